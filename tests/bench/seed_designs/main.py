# Entry point of a seed design (tests/bench/seed_designs) on the DCC-OTA runtime: the same
# runtime as main.py starts, with ID/OTA handled by seed_ota.py instead of the connect-back.
import loader  # noqa: F401  first, on an empty heap, as main.py does
import seed_common

seed_common.main()
