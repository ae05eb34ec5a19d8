"""Helpers under PyTorch's names: `minidl.utils.data` is `minidl.data`."""
