"""The water decision, stated once: which clusters or fine groups are water, and whether a pixel
is water given its level.  Pure (numpy only).

A model decides water in one of three ways (its :attr:`Decision.kind`):

* ``"clusters"``: the pixels of some reported clusters.  Those named by hand
  (``labeller.manual``, ``labelling.method: clusters``), else the model's ``water_ids`` (a model
  built by hand, without a labeller);
* ``"levels"``: a water rule without fine groups: a pixel is water when its own level (see below)
  reaches :data:`OWN_EVIDENCE`;
* ``"groups"``: a water rule and fine groups: each fine group needs a level
  (:meth:`rs_change.labelling.Labeller.need`: :data:`HALF_WATER` in water groups,
  :data:`OWN_EVIDENCE` in dark groups, :data:`NEVER` elsewhere), and a pixel is water when its
  level reaches its fine group's need.

A pixel's level is its own evidence under the scene's rule
(:meth:`rs_change.labelling.WaterRule.level`): :data:`LAND` (0), :data:`HALF_WATER` (1, at
least half water by unmixing) or :data:`OWN_EVIDENCE` (2, that and water's own index and green -
dark gap).  Every need is at least :data:`HALF_WATER`, so a pixel of level 0 is land in every
kind, whatever its group: the paths only compute the fine groups of pixels of level 1 or 2.

The water fraction of a pixel (``water_fraction_<date>.tif``) is its unmixed fraction in percent
(:meth:`rs_change.labelling.WaterRule.percent`), bounded by the decision: at least
:data:`FRACTION_WATER` where the pixel is water, below it where it is land (:meth:`Decision.percent`).
Where the decision has no unmixing (``"clusters"``, or a rule fitted without water groups) the
percent is 100 for water and 0 for land.

Every path that decides water states nothing of its own: the numpy reference
(:func:`rs_change.water.decide_rows`, :func:`rs_change.water.classify`), the lookup tables
(:func:`rs_change.lut.classify_tables`) and the compiled loop (:func:`rs_change.kernels.classify_u8`,
which receives :meth:`Decision.encoding`) take the kind, the tables and the percent rule from a
:class:`Decision` (``tests/test_decision.py`` checks every path against :meth:`Decision.water`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

#: Pixel levels (:meth:`rs_change.labelling.WaterRule.level`).
LAND, HALF_WATER, OWN_EVIDENCE = 0, 1, 2
#: The need of a fine group whose pixels are never water (no level reaches it).
NEVER = 3

CLUSTERS, LEVELS, GROUPS = "clusters", "levels", "groups"
#: The compiled loop's code of each kind (``mode`` in ``_kernels.c``).
_C_MODES = {LEVELS: 0, GROUPS: 1, CLUSTERS: 2}

#: The water fraction (percent) from which a pixel may be water: water pixels are at least this,
#: land pixels below it.
FRACTION_WATER = 50
#: The water fraction's value of unobserved pixels.
FRACTION_NODATA = 255


def id_table(ids: Any) -> np.ndarray:
    """uint8 (256,): 1 at the cluster ids in ``ids`` (ids outside 0..254 match no cluster, as in
    ``np.isin``), so that ``table[labels]`` is ``np.isin(labels, ids)`` for labels of k < 255.
    """
    ids = np.asarray(ids if ids is not None else [], np.int64).reshape(-1)
    table = np.zeros(256, np.uint8)
    table[ids[(ids >= 0) & (ids < 255)]] = 1
    return table


def need_table(water_groups: Any, dark_groups: Any) -> np.ndarray:
    """uint8 (256,): the level a pixel of each fine group needs: :data:`HALF_WATER` in
    ``water_groups``, :data:`OWN_EVIDENCE` in ``dark_groups``, :data:`NEVER` elsewhere.
    """
    t = np.full(256, NEVER, np.uint8)
    for ids, v in ((dark_groups, OWN_EVIDENCE), (water_groups, HALF_WATER)):
        ids = np.asarray(ids, np.int64).reshape(-1)
        t[ids[(ids >= 0) & (ids < 255)]] = v
    return t


@dataclass(frozen=True)
class Decision:
    """How one model decides water (:func:`decision_of`).

    Attributes
    ----------
    kind : {"clusters", "levels", "groups"}
    rule : WaterRule or None
        The per-pixel rule (``"levels"`` and ``"groups"``).
    fine : KMeans or None
        The fine groups (``"groups"``), predicting on the scaled features.
    need : uint8 ndarray (256,)
        The level a pixel needs, per fine group (``"groups"``); every entry :data:`OWN_EVIDENCE`
        for ``"levels"`` (all pixels in group 0).
    water_clusters : uint8 ndarray (256,)
        1 at the water cluster ids (``"clusters"``).
    """

    kind: str
    rule: Any
    fine: Any
    need: np.ndarray
    water_clusters: np.ndarray

    @property
    def per_pixel(self) -> bool:
        """Water is decided per pixel (a rule), not by whole clusters."""
        return self.kind != CLUSTERS

    @property
    def groups(self) -> bool:
        """A pixel's fine group takes part (pixels of level 1 or 2 need it)."""
        return self.kind == GROUPS

    def of_clusters(self, labels: np.ndarray) -> np.ndarray:
        """Water (bool, the shape of ``labels``) of reported cluster ids (``"clusters"``)."""
        labels = np.asarray(labels)
        if labels.dtype == np.uint8:
            return self.water_clusters[labels].view(bool)
        return np.isin(labels, np.flatnonzero(self.water_clusters))

    def of_levels(self, levels: np.ndarray, groups: Optional[np.ndarray] = None) -> np.ndarray:
        """Water (bool, the shape of ``levels``) of pixels of these levels, in these fine groups
        (``"groups"``; None for ``"levels"``: group 0 for all).
        """
        return levels >= (self.need[0] if groups is None else self.need[groups])

    def percent(self, water: np.ndarray, unmixed: Optional[np.ndarray]) -> np.ndarray:
        """The water fraction (uint8 0-100) of pixels: ``unmixed`` (percent, uint8) bounded by the
        decision (at least :data:`FRACTION_WATER` where ``water``, below it elsewhere); ``unmixed``
        None (no unmixing): 100 for water, 0 for land.
        """
        w = np.asarray(water).astype(bool, copy=False)
        if unmixed is None:
            return w.astype(np.uint8) * np.uint8(100)
        return np.where(w, np.maximum(unmixed, np.uint8(FRACTION_WATER)),
                        np.minimum(unmixed, np.uint8(FRACTION_WATER - 1))).astype(np.uint8)

    def encoding(self) -> tuple[int, np.ndarray, np.ndarray]:
        """What the compiled loop receives: (mode, need table, water-cluster table)."""
        return _C_MODES[self.kind], self.need, self.water_clusters


def decision_of(model: Any) -> Decision:
    """The :class:`Decision` of a model: anything with ``labeller`` (a
    :class:`~rs_change.labelling.Labeller` or None) and ``water_ids``
    (:class:`~rs_change.model.WaterModel`, pass 1's ``DateModel``, or a labeller's own view).
    """
    lab = getattr(model, "labeller", None)
    none = np.zeros(256, np.uint8)
    if lab is None or lab.manual is not None or lab.rule is None:
        ids = lab.manual if lab is not None and lab.manual is not None else model.water_ids
        return Decision(CLUSTERS, None, None, np.full(256, NEVER, np.uint8), id_table(ids))
    if lab.fine is None:
        return Decision(LEVELS, lab.rule, None, np.full(256, OWN_EVIDENCE, np.uint8), none)
    return Decision(GROUPS, lab.rule, lab.fine, lab.need(), none)
