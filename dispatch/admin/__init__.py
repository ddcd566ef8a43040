"""Administration of the city configuration (SPEC §9): versions in the store, validation with the
city-package loader's checks, the diff of each version, the rules' dry run, publishing to every
process through the event log, and the export of a version as a package folder.

    versions.py  CityConfig: read, check, publish, roll back, adopt a version (one per Context)
    checks.py    what the loader cannot know: codes still used by cases, accounts, places
    diff.py      what a version changed, per kind, by item id
    dry_run.py   the last days' cases routed by the current and by proposed rules
    export.py    a version written as a package folder that loads to the same model
"""
