"""Teaching: grading student work and scaffolding new modules (and the learner's track to come).
Teaching builds on the model and the steps (a student's module is exported by the exporter itself);
neither of those imports teaching.
"""
