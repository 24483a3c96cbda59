"""Stage `params`: every key checked before any other stage runs (chapter4/params.py is the one reader)."""
from chapter4 import io, params

if __name__ == "__main__":
    params.check_all()
    io.write_bytes("data/params.ok", b"params.yaml: every key valid\n")
