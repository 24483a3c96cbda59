"""Chapter 4 of *Deep Learning with Python* (2nd ed.) as a DVC pipeline: one module per stage."""
