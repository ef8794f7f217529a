"""The self-contained HTML report of an experiment (:func:`nas.outputs.report.build.build_report`)."""
