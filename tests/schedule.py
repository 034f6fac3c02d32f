"""The xdist scheduler of ``make test``: whole files (or whole folders named in ``folders``, such
as ``tests/spark/``) as work units, the costliest left first (longest-processing-time first: the
two workers end close together).

xdist's own ``loadfile``/``loadgroup`` hand out units in collection order or by test count, so a
one-test file of 80 s could start last and run alone while the other worker idles.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler.loadscope import LoadScopeScheduling


class CostScheduling(LoadScopeScheduling):
    def __init__(
        self,
        config: Any,
        log: Any,
        costs: dict[str, float],
        new_test_s: float,
        folders: tuple[str, ...] = (),
    ) -> None:
        super().__init__(config, log)
        self.costs = costs
        self.new_test_s = new_test_s
        self.folders = folders

    def _split_scope(self, nodeid: str) -> str:
        # "tests/spark/x.py::test" -> "tests/spark/" (one unit); else the file
        for folder in self.folders:
            if nodeid.startswith(folder):
                return folder
        return nodeid.split("::", 1)[0]

    def cost(self, scope: str) -> float:
        files: dict[str, int] = {}
        for nodeid in self.workqueue[scope]:
            path = nodeid.split("::", 1)[0]
            files[path] = files.get(path, 0) + 1
        return sum(self.costs.get(f, n * self.new_test_s) for f, n in files.items())

    def _assign_work_unit(self, node: Any) -> None:
        scope = max(self.workqueue, key=self.cost)
        self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)
