"""The app's tabs: open a file, encode it, verify an archive, inspect an archive."""
