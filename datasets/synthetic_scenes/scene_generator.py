"""Procedural aerial scenes: land-cover textures, linear features and small objects, each with a box.

`generate_scene(seed, index, min_size, max_size)` is a pure function of its arguments (its RNG is
`default_rng([seed, index])`), so examples do not depend on order, sharding or worker count.
Drawing uses numpy for textures and PIL's C rasteriser for shapes: a 256-px scene takes a few ms.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

SCENE_CLASSES = ("sea", "desert", "forest", "farmland", "residential", "harbor", "airport", "parking_lot",
                 "industrial", "river")
OBJECT_CLASSES = ("building", "car", "plane", "ship", "storage_tank", "tree", "boat")

COLOURS = {
    "white": (235, 235, 230), "gray": (128, 128, 132), "black": (35, 35, 38), "red": (190, 45, 40),
    "blue": (40, 80, 170), "yellow": (215, 190, 60), "green": (50, 120, 60), "orange": (220, 120, 40),
    "brown": (120, 80, 50),
}
CAR_COLOURS = ("white", "gray", "black", "red", "blue", "yellow")
ROOF_COLOURS = ("red", "gray", "blue", "orange", "brown", "white")
SHIP_COLOURS = ("white", "gray", "red", "blue")


@dataclasses.dataclass
class SceneObject:
  label: str
  box: tuple[float, float, float, float]  # ymin, xmin, ymax, xmax in [0, 1]
  colour: str
  size_px: float  # longest side in native pixels
  covered: bool = False  # A road drawn later crosses its box: maybe hidden (questions.py leaves it out).


@dataclasses.dataclass
class Scene:
  image: np.ndarray  # uint8 [H, W, 3]
  scene: str
  objects: list[SceneObject]
  features: list[str]  # linear/land features present: "road", "river", "runway", "pier", "coast", ...
  complexity: float


def _smooth_noise(rng, h, w, cell, channels=1):
  """Value noise: coarse gaussian grid bilinearly upsampled to [h, w, channels], roughly in [-1, 1]."""
  gh, gw = max(2, h // cell + 2), max(2, w // cell + 2)
  coarse = rng.normal(size=(gh, gw, channels)).astype(np.float32)
  out = np.stack([np.asarray(Image.fromarray(coarse[..., c]).resize((w, h), Image.BILINEAR))
                  for c in range(channels)], -1)
  return np.clip(out / 2.0, -1, 1)


def _texture(rng, h, w, base, var, cell=24, fine=6.0):
  base = np.asarray(base, np.float32)
  tex = base + var * _smooth_noise(rng, h, w, cell) + rng.normal(0, fine, size=(h, w, 1))
  return tex


def _water(rng, h, w):
  tex = _texture(rng, h, w, (30, 70, 110), 18, cell=40, fine=3)
  waves = np.sin(np.arange(h)[:, None] * rng.uniform(0.3, 0.6) + _smooth_noise(rng, h, w, 16)[..., 0] * 3)
  return tex + 6 * waves[..., None]


def _sand(rng, h, w):
  tex = _texture(rng, h, w, (205, 175, 120), 25, cell=48, fine=4)
  dunes = np.sin((np.arange(w)[None, :] * 0.08 + _smooth_noise(rng, h, w, 32)[..., 0] * 4))
  return tex + 12 * dunes[..., None]


def _grass(rng, h, w):
  return _texture(rng, h, w, (85, 125, 60), 20, cell=32, fine=6)


def _concrete(rng, h, w):
  return _texture(rng, h, w, (150, 148, 142), 10, cell=40, fine=5)


def _canopy(rng, h, w):
  tex = _texture(rng, h, w, (40, 90, 45), 25, cell=8, fine=10)
  return tex


def _fields(rng, h, w):
  crops = [(140, 160, 70), (190, 170, 90), (95, 130, 55), (150, 120, 80), (120, 150, 60)]
  img = np.zeros((h, w, 3), np.float32)
  n = rng.integers(2, 5)
  cuts = np.sort(rng.integers(w // 6, w - w // 6, size=n - 1)) if n > 1 else np.array([], int)
  edges = [0, *cuts.tolist(), w]
  for a, b in zip(edges[:-1], edges[1:]):
    colour = np.asarray(crops[rng.integers(len(crops))], np.float32)
    stripe = 4 + 3 * np.sin(np.arange(h) * rng.uniform(0.5, 1.2))[:, None, None]
    img[:, a:b] = colour + stripe
  return img + rng.normal(0, 5, size=(h, w, 1))


class _Canvas:
  """A PIL canvas plus the scene graph being drawn."""

  def __init__(self, array: np.ndarray):
    self.h, self.w = array.shape[:2]
    self.img = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))
    self.draw = ImageDraw.Draw(self.img)
    self.objects: list[SceneObject] = []
    self.features: list[str] = []

  def add(self, label, x0, y0, x1, y1, colour):
    x0, x1 = sorted((max(0.0, x0), min(self.w - 1.0, x1)))
    y0, y1 = sorted((max(0.0, y0), min(self.h - 1.0, y1)))
    if x1 - x0 < 1 or y1 - y0 < 1:
      return
    self.objects.append(SceneObject(label, (y0 / self.h, x0 / self.w, y1 / self.h, x1 / self.w), colour,
                                    max(x1 - x0, y1 - y0)))

  def cover(self, x0, y0, x1, y1):
    """Marks the objects drawn so far whose box meets (x0, y0, x1, y1), about to be painted over."""
    for o in self.objects:
      oy0, ox0, oy1, ox1 = o.box[0] * self.h, o.box[1] * self.w, o.box[2] * self.h, o.box[3] * self.w
      if x0 < ox1 and ox0 < x1 and y0 < oy1 and oy0 < y1:
        o.covered = True

  def occupied(self, x0, y0, x1, y1, pad=1.0):
    for o in self.objects:
      oy0, ox0, oy1, ox1 = o.box[0] * self.h, o.box[1] * self.w, o.box[2] * self.h, o.box[3] * self.w
      if x0 < ox1 + pad and ox0 < x1 + pad and y0 < oy1 + pad and oy0 < y1 + pad:
        return True
    return False


# -- objects --------------------------------------------------------------------------------------
def _car(c, rng, cx, cy, s, horizontal=None):
  length = s * rng.uniform(0.018, 0.028)
  width = length * 0.5
  horizontal = rng.random() < 0.5 if horizontal is None else horizontal
  dx, dy = (length / 2, width / 2) if horizontal else (width / 2, length / 2)
  if c.occupied(cx - dx, cy - dy, cx + dx, cy + dy):
    return False
  colour = CAR_COLOURS[rng.integers(len(CAR_COLOURS))]
  c.draw.rectangle([cx - dx, cy - dy, cx + dx, cy + dy], fill=COLOURS[colour])
  c.add("car", cx - dx, cy - dy, cx + dx, cy + dy, colour)
  return True


def _tree(c, rng, cx, cy, s):
  r = s * rng.uniform(0.012, 0.022)
  if c.occupied(cx - r, cy - r, cx + r, cy + r, pad=-r * 0.5):
    return False
  c.draw.ellipse([cx - r + 1, cy - r + 1, cx + r + 1, cy + r + 1], fill=(25, 45, 25))
  c.draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(30 + int(rng.integers(20)), 100 + int(rng.integers(40)), 40))
  c.add("tree", cx - r, cy - r, cx + r, cy + r, "green")
  return True


def _building(c, rng, cx, cy, s, colour=None):
  bw, bh = s * rng.uniform(0.05, 0.11), s * rng.uniform(0.05, 0.11)
  x0, y0, x1, y1 = cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2
  if c.occupied(x0, y0, x1, y1, pad=2):
    return False
  colour = colour or ROOF_COLOURS[rng.integers(len(ROOF_COLOURS))]
  c.draw.rectangle([x0 + 2, y0 + 2, x1 + 2, y1 + 2], fill=(50, 50, 50))  # Shadow.
  c.draw.rectangle([x0, y0, x1, y1], fill=COLOURS[colour])
  c.draw.line([x0, (y0 + y1) / 2, x1, (y0 + y1) / 2], fill=tuple(int(v * 0.8) for v in COLOURS[colour]), width=1)
  c.add("building", x0, y0, x1, y1, colour)
  return True


def _plane(c, rng, cx, cy, s):
  span = s * rng.uniform(0.07, 0.12)
  body = span * 0.9
  if c.occupied(cx - span / 2, cy - body / 2, cx + span / 2, cy + body / 2, pad=2):
    return False
  colour = "white" if rng.random() < 0.8 else "gray"
  col = COLOURS[colour]
  c.draw.rectangle([cx - span * 0.07, cy - body / 2, cx + span * 0.07, cy + body / 2], fill=col)  # Fuselage.
  c.draw.polygon([(cx - span / 2, cy + body * 0.05), (cx + span / 2, cy + body * 0.05), (cx, cy - body * 0.2)],
                 fill=col)  # Wings.
  c.draw.rectangle([cx - span * 0.2, cy + body * 0.38, cx + span * 0.2, cy + body * 0.45], fill=col)  # Tail.
  c.add("plane", cx - span / 2, cy - body / 2, cx + span / 2, cy + body / 2, colour)
  return True


def _hull(c, rng, cx, cy, length, width, label, colours, horizontal=True):
  dx, dy = (length / 2, width / 2) if horizontal else (width / 2, length / 2)
  if c.occupied(cx - dx, cy - dy, cx + dx, cy + dy, pad=2):
    return False
  colour = colours[rng.integers(len(colours))]
  if horizontal:
    pts = [(cx - dx, cy - dy), (cx + dx * 0.6, cy - dy), (cx + dx, cy), (cx + dx * 0.6, cy + dy), (cx - dx, cy + dy)]
  else:
    pts = [(cx - dx, cy + dy), (cx - dx, cy - dy * 0.6), (cx, cy - dy), (cx + dx, cy - dy * 0.6), (cx + dx, cy + dy)]
  c.draw.polygon(pts, fill=COLOURS[colour])
  c.add(label, cx - dx, cy - dy, cx + dx, cy + dy, colour)
  return True


def _ship(c, rng, cx, cy, s, horizontal=True):
  length = s * rng.uniform(0.07, 0.14)
  return _hull(c, rng, cx, cy, length, length * 0.25, "ship", SHIP_COLOURS, horizontal)


def _boat(c, rng, cx, cy, s, horizontal=True):
  length = s * rng.uniform(0.022, 0.035)
  return _hull(c, rng, cx, cy, length, length * 0.4, "boat", ("white", "white", "red", "yellow"), horizontal)


def _tank(c, rng, cx, cy, s):
  r = s * rng.uniform(0.025, 0.045)
  if c.occupied(cx - r, cy - r, cx + r, cy + r, pad=2):
    return False
  c.draw.ellipse([cx - r + 2, cy - r + 2, cx + r + 2, cy + r + 2], fill=(60, 60, 60))
  c.draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(225, 225, 220), outline=(150, 150, 150), width=max(1, int(r / 5)))
  c.add("storage_tank", cx - r, cy - r, cx + r, cy + r, "white")
  return True


def _scatter(c, rng, fn, n, region, s, tries=6, **kw):
  """Places up to n objects uniformly in region (x0, y0, x1, y1) without overlaps."""
  x0, y0, x1, y1 = region
  placed = 0
  for _ in range(n * tries):
    if placed >= n:
      break
    if fn(c, rng, rng.uniform(x0, x1), rng.uniform(y0, y1), s, **kw):
      placed += 1
  return placed


# -- scenes -----------------------------------------------------------------------------------------
def _road(c, w_px, horizontal, pos, colour=(95, 95, 98)):
  band = [0, pos - w_px / 2, c.w, pos + w_px / 2] if horizontal else [pos - w_px / 2, 0, pos + w_px / 2, c.h]
  c.cover(*band)
  c.draw.rectangle(band, fill=colour)
  if "road" not in c.features:
    c.features.append("road")


def _river_band(c, rng, s):
  """A meandering river across the image; returns centre-line points (x, y)."""
  ys = np.linspace(-0.05, 1.05, 24) * c.h
  phase, amp = rng.uniform(0, 6), rng.uniform(0.05, 0.15) * c.w
  xs = c.w * rng.uniform(0.35, 0.65) + amp * np.sin(ys / c.h * rng.uniform(3, 6) + phase)
  width = s * rng.uniform(0.08, 0.14)
  c.draw.line(list(zip(xs, ys)), fill=(35, 75, 105), width=int(width), joint="curve")
  c.features.append("river")
  return xs, ys, width


def render(scene: str, rng: np.random.Generator, h: int, w: int) -> _Canvas:
  s = float(min(h, w))
  if scene == "sea":
    c = _Canvas(_water(rng, h, w))
    _scatter(c, rng, _boat, int(rng.choice([0, 0, 1, 2])), (0, 0, w, h), s, horizontal=bool(rng.random() < .5))
  elif scene == "desert":
    c = _Canvas(_sand(rng, h, w))
    if rng.random() < 0.3:
      _scatter(c, rng, _building, 1, (0, 0, w, h), s, colour="brown")
  elif scene == "forest":
    c = _Canvas(_canopy(rng, h, w))
    _scatter(c, rng, _tree, int(rng.integers(15, 45)), (0, 0, w, h), s)
    if rng.random() < 0.4:
      _road(c, s * 0.03, bool(rng.random() < .5), rng.uniform(0.2, 0.8) * s, colour=(150, 130, 100))
  elif scene == "farmland":
    c = _Canvas(_fields(rng, h, w))
    if rng.random() < 0.6:
      y = rng.uniform(0.2, 0.8) * h
      _road(c, s * 0.025, True, y, colour=(160, 140, 110))
      _scatter(c, rng, _tree, int(rng.integers(3, 10)), (0, y - s * 0.06, w, y + s * 0.06), s)
    _scatter(c, rng, _building, int(rng.integers(0, 4)), (0, 0, w, h), s)
  elif scene == "residential":
    c = _Canvas(_grass(rng, h, w))
    step = s * rng.uniform(0.25, 0.35)
    for pos in np.arange(step / 2, s, step):
      _road(c, s * 0.035, True, pos)
      _road(c, s * 0.035, False, pos)
    _scatter(c, rng, _building, int(rng.integers(8, 30)), (0, 0, w, h), s)
    for pos in np.arange(step / 2, s, step):  # Cars on the roads.
      _scatter(c, rng, _car, int(rng.integers(0, 5)), (0, pos - s * .01, w, pos + s * .01), s, horizontal=True)
    _scatter(c, rng, _tree, int(rng.integers(3, 15)), (0, 0, w, h), s)
  elif scene == "harbor":
    coast = rng.uniform(0.4, 0.6) * w
    c = _Canvas(np.concatenate([_water(rng, h, w)[:, :int(coast)], _concrete(rng, h, w)[:, int(coast):]], 1))
    c.features += ["coast", "pier"]
    n_piers = int(rng.integers(1, 4))
    for y in np.linspace(0.2, 0.8, n_piers) * h:
      c.draw.rectangle([coast * 0.45, y - s * 0.015, coast, y + s * 0.015], fill=(170, 165, 155))
      for side in (-1, 1):
        _scatter(c, rng, _ship, int(rng.integers(0, 3)), (coast * 0.5, y + side * s * 0.05,
                                                          coast * 0.95, y + side * s * 0.05), s, horizontal=True)
    _scatter(c, rng, _boat, int(rng.integers(0, 5)), (0, 0, coast * 0.4, h), s, horizontal=bool(rng.random() < .5))
    _scatter(c, rng, _tank, int(rng.integers(0, 5)), (coast + s * 0.05, 0, w, h), s)
    _scatter(c, rng, _building, int(rng.integers(0, 4)), (coast + s * 0.05, 0, w, h), s)
  elif scene == "airport":
    c = _Canvas(_grass(rng, h, w))
    y = rng.uniform(0.25, 0.4) * h
    c.draw.rectangle([0, y - s * 0.05, w, y + s * 0.05], fill=(80, 80, 84))
    for x in np.arange(0, w, s * 0.08):
      c.draw.rectangle([x, y - s * 0.004, x + s * 0.04, y + s * 0.004], fill=(230, 230, 230))
    c.features.append("runway")
    apron = (0, y + s * 0.12, w, h)
    c.draw.rectangle([0, y + s * 0.1, w, h], fill=(160, 158, 152))
    _scatter(c, rng, _plane, int(rng.integers(1, 9)), (s * .06, y + s * .18, w - s * .06, h - s * .06), s)
    _scatter(c, rng, _building, int(rng.integers(0, 3)), apron, s, colour="gray")
    _scatter(c, rng, _car, int(rng.integers(0, 6)), apron, s)
  elif scene == "parking_lot":
    c = _Canvas(_concrete(rng, h, w) * 0.8)
    rows = np.arange(s * 0.1, s * 0.95, s * 0.12)
    for y in rows:
      c.draw.line([s * 0.05, y + s * 0.025, w - s * 0.05, y + s * 0.025], fill=(225, 225, 225), width=1)
    fill = rng.uniform(0.05, 0.95)
    for y in rows:
      for x in np.arange(s * 0.07, w - s * 0.06, s * 0.035):
        if rng.random() < fill:
          _car(c, rng, x, y, s, horizontal=False)
    _scatter(c, rng, _tree, int(rng.integers(0, 8)), (0, 0, w, s * 0.06), s)
  elif scene == "industrial":
    c = _Canvas(_concrete(rng, h, w))
    _scatter(c, rng, _tank, int(rng.integers(2, 12)), (0, 0, w * 0.6, h), s)
    _scatter(c, rng, _building, int(rng.integers(2, 8)), (w * 0.5, 0, w, h), s, colour="gray")
    _road(c, s * 0.03, False, w * 0.55)
    _scatter(c, rng, _car, int(rng.integers(0, 10)), (w * 0.6, 0, w, h), s)
  elif scene == "river":
    c = _Canvas(_grass(rng, h, w) if rng.random() < 0.5 else _fields(rng, h, w))
    xs, ys, width = _river_band(c, rng, s)
    for _ in range(int(rng.integers(0, 4))):
      k = int(rng.integers(3, len(ys) - 3))
      _boat(c, rng, xs[k], ys[k], s, horizontal=False)
    for _ in range(int(rng.integers(4, 16))):
      k = int(rng.integers(0, len(ys)))
      _tree(c, rng, xs[k] + rng.choice([-1, 1]) * (width * 0.7 + rng.uniform(2, s * .04)), ys[k], s)
    if rng.random() < 0.4:
      _road(c, s * 0.03, True, rng.uniform(0.2, 0.8) * h)
  else:
    raise ValueError(f"Unknown scene {scene!r}; expected one of {SCENE_CLASSES}")
  return c


def complexity_of(objects: list[SceneObject], size: int) -> float:
  """Scene-graph complexity in [0, 1]: object count, distinct classes and the share of small objects."""
  n = len(objects)
  if n == 0:
    return 0.0
  small = np.mean([o.size_px < 0.04 * size for o in objects])
  distinct = len({o.label for o in objects})
  value = 0.55 * np.log1p(n) / np.log1p(80) + 0.2 * min(distinct, 4) / 4 + 0.25 * small
  return float(np.clip(value, 0.0, 1.0))


def generate_scene(seed: int, index: int, min_size: int = 128, max_size: int = 320,
                   scene: str | None = None) -> Scene:
  """The `index`-th scene of the stream `seed` (deterministic; independent of other indices)."""
  rng = np.random.default_rng([seed, index])
  scene = scene or SCENE_CLASSES[int(rng.integers(len(SCENE_CLASSES)))]
  size = int(rng.integers(min_size // 16, max_size // 16 + 1)) * 16
  aspect = rng.choice([1.0, 1.0, 1.0, 0.75, 1.25])
  h, w = size, int(round(size * aspect / 16)) * 16
  canvas = render(scene, rng, h, w)
  image = np.asarray(canvas.img, np.uint8)
  return Scene(image=image, scene=scene, objects=canvas.objects, features=canvas.features,
               complexity=complexity_of(canvas.objects, min(h, w)))
