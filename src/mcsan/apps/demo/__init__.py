"""`mcsan demo`: the whole pipeline on the embedded default, MCSAN against its baseline.

Stages (each cached on disk, so a second run reuses finished work): generate the synthetic
world, extract frame features with the pretrained encoder, train MCSAN and the global-only
dual encoder (captions are parsed by the loader, with a cache), evaluate on the test split,
the compositional split and the twin sets, and write ``REPORT.md`` with plots.
"""

from mcsan.apps.demo.settings import DemoResult, DemoSettings, StageTiming
from mcsan.apps.demo.stages import run_demo

__all__ = ["DemoResult", "DemoSettings", "StageTiming", "run_demo"]
