"""TensorFlow and Keras, loaded once for the modules that train (`from chapter4.backend import keras, tf`).

Only the training stages import it (through chapter4/training.py and chapter4/model.py); the other stages
never load TensorFlow.
"""
import gc
import os
import sys

__all__ = ["keras", "tf"]

# TensorFlow's C++ log lines below WARNING (its start-up INFO lines) are hidden unless the user asks for them;
# set before TensorFlow loads, so nothing stands between a fatal error during the import and stderr.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

# Loading TensorFlow is most of a training stage's start-up; two things cut it by ~2.5 s on a 2-core machine:
# - Keras imports matplotlib.pyplot when it loads, only for its image-gallery helper (1-2 s). Training never
#   plots, so matplotlib is hidden while TensorFlow and Keras load (Keras then leaves that helper disabled)
#   and later imports in this process load it as usual.
# - Python's cyclic garbage collector keeps re-scanning the hundreds of thousands of objects the import
#   creates, there and again while tracing the training functions: it is off during the import, and what
#   the import made is then frozen (gc.freeze: never scanned again; none of it is garbage).
_hide = "matplotlib" not in sys.modules
if _hide:
    sys.modules["matplotlib"] = None
_collecting = gc.isenabled()
gc.disable()
try:
    import tensorflow as tf
    import keras
finally:
    if _hide:
        del sys.modules["matplotlib"]
    if _collecting:
        gc.enable()
    gc.freeze()
