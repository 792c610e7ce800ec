"""The hairline on the skull: its parameters per hair style (`sample_hairline`) and the signed distance above it
(`hair_field`), in latitudes about the skull's centre so that a receding hairline stays a line over the crown."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class HairlineParams:
    """Hairline latitudes (degrees about HEAD_CENTER, neutral head) at control azimuths, and the cap's volume.

    Latitudes rather than heights keep the field well defined over the crown (a receding hairline stays a line).
    """

    front: float = 45.0        # forehead hairline at the centre (brows are near 11 degrees)
    recess: float = 0.0        # extra latitude at the temples (M-shaped receding hairline)
    temple: float = 30.0       # where the hairline turns down at the side of the forehead
    sideburn: float = -8.0     # bottom of the sideburn, in front of the ear
    behind_ear: float = -18.0
    nape: float = -57.0
    ear_margin: float = 0.5    # cm of skin kept bare around the ear
    wobble: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)  # (amplitude deg, phase) pairs along the azimuth
    thickness: float = 1.0     # cap offset at full volume, cm
    ramp: float = 2.0          # cm above the hairline to reach full volume

    @classmethod
    def widest(cls) -> HairlineParams:
        """A hairline below every sampled one: the cap's candidate vertices."""
        return cls(front=34.0, temple=20.0, sideburn=-24.0, behind_ear=-32.0, nape=-66.0, ear_margin=-0.3)

    def latitude(self, abs_az: np.ndarray) -> np.ndarray:
        knots = (0, 22, 40, 58, 70, 80, 95, 118, 140, 180)
        lats = (self.front, self.front + 0.6 * self.recess, self.front + self.recess - 2.0, self.temple,
                0.5 * (self.temple + self.sideburn) + 5.0, self.sideburn, self.sideburn,
                self.behind_ear, self.nape + 2.0, self.nape)
        lat = np.interp(abs_az, knots, lats)
        a = np.radians(abs_az)
        for k, (amp, phase) in enumerate(zip(self.wobble[0::2], self.wobble[1::2])):
            lat = lat + amp * np.sin((k + 3) * a + phase)
        return lat


def hair_field(az: np.ndarray, lat: np.ndarray, radius: np.ndarray, ear: np.ndarray,
               p: HairlineParams) -> np.ndarray:
    """Signed distance above the hairline along the skull, roughly cm: > 0 inside the hair."""
    above = np.radians(lat - p.latitude(np.abs(az))) * radius
    return np.minimum(above, (ear - p.ear_margin) * 1.5)


def sample_hairline(rng: np.random.Generator, style: str) -> HairlineParams:
    u = rng.uniform
    front = u(38.0, 50.0)
    p = dict(front=front, temple=front - u(10.0, 18.0), sideburn=u(-18.0, 0.0), behind_ear=u(-25.0, -12.0),
             nape=u(-61.0, -54.0), ear_margin=u(0.2, 0.9),
             wobble=tuple(x for _ in range(3) for x in (u(0.5, 2.0), u(0, 2 * np.pi))))
    if style == "buzz":
        p.update(thickness=u(0.15, 0.35), ramp=u(0.4, 0.8), sideburn=u(-8.0, 2.0), nape=u(-56.0, -50.0))
    elif style == "short":
        p.update(thickness=u(0.5, 1.1), ramp=u(1.0, 2.5))
    elif style == "receding":
        front = u(50.0, 58.0)
        p.update(front=front, recess=u(3.0, 10.0), temple=front - u(8.0, 16.0), thickness=u(0.2, 0.8),
                 ramp=u(0.8, 2.0))
    elif style == "bun":
        p.update(thickness=u(0.4, 0.9), ramp=u(1.0, 2.0), nape=u(-57.0, -52.0))
    elif style == "medium":
        p.update(thickness=u(1.0, 1.8), ramp=u(2.0, 3.5), nape=u(-62.0, -57.0))
    else:  # long
        p.update(thickness=u(1.0, 2.0), ramp=u(2.0, 4.0), nape=u(-64.0, -58.0), behind_ear=u(-28.0, -18.0))
    return HairlineParams(**p)
