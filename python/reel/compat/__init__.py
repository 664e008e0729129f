"""Drop-in replacements for the Python classes of systems reel replaces.

- ``reel.compat.kvspool.Kvspool``: kvspool's ``Kvspool(dir)`` with ``write(dict)`` and
  ``read()``.
- ``reel.compat.jk.DirBasedKeyValueStore``: jk_keyvaluestore's store class.
"""
