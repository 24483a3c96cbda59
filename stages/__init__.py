"""The pipeline's stages (one module per stage of dvc.yaml) and the command-line tools; chapter4/ is the library they share."""
