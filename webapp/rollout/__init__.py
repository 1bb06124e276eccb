"""Rollouts: a release taken to many devices in waves, a few at a time, stopping by itself
when too many fail.

    states   Phase (the rollout) and Step (each device in it): one enumeration for the
             service, the pages, the API, the CLI and the page scripts
    store    every SQL statement on rollouts and their devices
    service  RolloutService: create, pause, resume, cancel, and the server's thread that
             advances every running rollout (one push per device through PushService)

Import from the modules themselves, as for webapp.push.
"""
