"""The build steps behind the doit tasks: check, export, release notebooks, run tests and examples,
memory profiles and the report, packaging. Steps import the model (tito.model), never the front
(tito.tasks, tito.cli) or teaching (tito.teaching). `generated` is the one mechanism for a file the
build writes; `lock` (one build at a time) and `statedb` (doit's database) guard the build as a whole.
"""
