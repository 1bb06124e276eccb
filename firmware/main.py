# Entry point: load and start the DCC-OTA firmware (loader.main() never returns). A board
# running firmware from before loader.py imported `runtime` here: a bundle that brings
# loader.py brings this main.py too (firmware/README.md, "Updating the firmware").
import loader

loader.main()
