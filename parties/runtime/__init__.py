"""What a party process stands on: its config file, CURVE keys, audit log, logging and errors."""
