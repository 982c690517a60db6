"""Studies: applications built on the engine, each a resumable grid of runs and its report.

    from videopeft.studies.frame_study import run_frame_study   # accuracy / cost vs frames
    from videopeft.studies.demo import run_demo                 # the embedded demo -> REPORT.md

The engine (`videopeft.engine`) knows nothing about them; they call `train` and read back the
runs' results.json and log.jsonl.
"""
