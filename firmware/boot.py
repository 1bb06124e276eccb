# Runs first on every boot. Kept minimal: safe boot and rollback will live here.
import gc

gc.collect()
