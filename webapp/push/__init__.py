"""Pushes: one update of one device, from its request to its end.

    states   State and Note: one enumeration for the service, pages, API, CLI and scripts
    store    every SQL statement on pushes, their timelines and their device leases
    trigger  the protocol's messages: the ID/OTA trigger, the ID/ota/status parser
    plan     Planner: what a push carries, checked once (and precompiled); PushRejected
    run      PushRun: one push's steps on its own thread; PushFailed
    service  PushService: create, queue, run, cancel, resume, adopt

Import from the modules themselves (webapp.push.service...): this file imports nothing, so
that schemas.py can take the states without loading the service.
"""
