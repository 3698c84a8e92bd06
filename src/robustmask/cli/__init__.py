"""The robustmask command line (see `robustmask --help`)."""
