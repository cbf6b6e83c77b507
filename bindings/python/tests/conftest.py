import os
import sys

# Run from the source tree: the package lives one folder up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
