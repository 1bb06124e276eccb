# Entry point: start the DCC-OTA runtime (it never returns).
import runtime

runtime.main()
