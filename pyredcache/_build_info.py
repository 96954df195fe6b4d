"""How this copy of pyredcache was built.

``setup.py`` rewrites this module in every wheel or build directory it
builds (never in the source tree), so an installed pyredcache can tell
``python -m pyredcache info`` whether its C core was compiled and, if not,
why.  This checked-in copy, which a checkout and an editable install use,
says that no build recorded anything.
"""

#: True: the build compiled the C core; False: it did not (see REASON);
#: None: no build wrote this file (a checkout or an editable install).
C_CORE_BUILT = None
#: Why the build did not compile the C core: what was missing and the
#: package that provides it, or that PYREDCACHE_NO_EXTENSIONS was set.
REASON = ""
#: The PYREDCACHE_* build switches that were set, e.g. ("PYREDCACHE_WERROR",).
SWITCHES = ()
#: The hiredis version pkg-config reported; "" when none was found.
HIREDIS_VERSION = ""
