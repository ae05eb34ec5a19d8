"""`minidl.utils.data` mirrors `torch.utils.data`: everything here lives in minidl.data."""
from minidl.data import *  # noqa: F401,F403
from minidl.data import __all__  # noqa: F401
