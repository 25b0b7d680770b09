"""Draw a SceneWorld scene as a small RGB image, with a pixel mask for every thing in it.

The image is split into a 2 x 3 grid of cells. Each place has a procedural background; each of the
40 nouns is a flat-colour icon built from a few PIL primitives (the ``ICONS`` table), drawn ``count``
times inside its cell; a sign is a cream board with dark text.

Drawing happens on a palette ("P") image: every thing gets its own block of palette indices, so one
pass gives both the picture and exact masks (a pixel's index says which thing painted it), and no
anti-aliasing can blend colours. Background colours are kept visibly far from every object colour and
never equal a detail or sign colour, so an object pixel can never be mistaken for scenery.
"""

from __future__ import annotations

import functools
import hashlib
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from bpo.world import vocab
from bpo.world.scene import Scene

MIN_SIZE, MAX_SIZE = 64, 512

# Fixed colours for icon details. Which one a noun uses depends on its main colour (dark ink on
# light objects, light on dark ones) so details stay visible on every one of the 11 colours.
INK = (36, 36, 50)
PALE = (236, 232, 212)
SIGN_BOARD = (250, 246, 226)  # cream, not vocab "white": a sign is never read as a white object
SIGN_INK = (44, 36, 30)
_DARK_MAIN = 110  # luma below which a main colour gets PALE details

# ---------------------------------------------------------------------------------------------------
# Icons. Each noun: (width / height, primitives). Coordinates are in a unit box (0, 0)-(1, 1) that is
# stretched over the icon's pixel box; role "m" is the object's colour, "d" its detail colour, and
# "f" a fine detail (eyes, flames, ticks) in the detail colour that is left out of icons too small
# to show it, where a one-pixel dot would swamp the object's own colour.
#   ("r", role, x0, y0, x1, y1)            rectangle
#   ("e", role, x0, y0, x1, y1)            ellipse
#   ("o", role, w, x0, y0, x1, y1)         ellipse outline (ring) of width w
#   ("c", role, a0, a1, x0, y0, x1, y1)    chord of the ellipse in the box, angles a0..a1
#   ("p", role, x0, y0, x1, y1, ...)       polygon
#   ("l", role, w, x0, y0, x1, y1, ...)    polyline of width w
# Widths are fractions of the icon's shorter side. Every icon is one connected shape (so instances
# can be counted) and its main colour covers most of it.
# ---------------------------------------------------------------------------------------------------
ICONS: dict[str, tuple[float, tuple[tuple, ...]]] = {
    "car": (1.8, (
        ("p", "m", .18, .42, .30, .10, .70, .10, .84, .42),
        ("r", "m", 0, .40, 1, .80),
        ("p", "f", .29, .40, .36, .17, .48, .17, .48, .40),
        ("p", "f", .54, .40, .54, .17, .67, .17, .74, .40),
        ("e", "d", .12, .60, .31, 1), ("e", "d", .69, .60, .88, 1),
    )),
    "bus": (2.1, (
        ("r", "m", 0, 0, 1, .86),
        ("r", "d", .05, .14, .17, .40), ("r", "d", .23, .14, .35, .40),
        ("r", "d", .41, .14, .53, .40), ("r", "d", .59, .14, .71, .40),
        ("r", "d", .80, .14, .95, .40),
        ("e", "d", .12, .74, .25, 1), ("e", "d", .64, .74, .77, 1),
    )),
    "truck": (2.0, (
        ("r", "m", 0, 0, .64, .76),
        ("p", "m", .66, .78, .66, .28, .86, .28, 1, .52, 1, .78),
        ("p", "d", .72, .34, .85, .34, .94, .52, .72, .52),
        ("r", "d", 0, .72, 1, .82),
        ("e", "d", .06, .66, .22, 1), ("e", "d", .26, .66, .42, 1), ("e", "d", .78, .66, .94, 1),
    )),
    "bicycle": (1.6, (
        ("o", "m", .09, 0, .40, .375, 1), ("o", "m", .09, .625, .40, 1, 1),
        ("l", "m", .08, .19, .70, .45, .72, .72, .30, .81, .70),
        ("l", "m", .08, .19, .70, .38, .30, .45, .72),
        ("l", "m", .08, .38, .30, .72, .30),
        ("r", "d", .29, .18, .45, .27),
        ("l", "d", .08, .72, .31, .69, .13, .80, .10),
    )),
    "motorcycle": (1.6, (
        ("p", "m", .14, .50, .34, .30, .76, .32, .88, .56, .66, .80, .34, .80),
        ("e", "m", .34, .18, .64, .46),
        ("l", "m", .08, .70, .14, .83, .72),
        ("o", "d", .08, 0, .46, .3375, 1), ("o", "d", .08, .6625, .46, 1, 1),
        ("l", "m", .08, .17, .72, .40, .70),
        ("p", "f", .08, .38, .36, .32, .38, .42, .10, .48),
        ("l", "f", .07, .60, .16, .72, .12),
    )),
    "traffic light": (0.42, (
        ("r", "m", .05, 0, .95, .72),
        ("e", "d", .26, .06, .74, .22), ("e", "d", .26, .28, .74, .44), ("e", "d", .26, .50, .74, .66),
        ("r", "m", .38, .70, .62, 1),
    )),
    "fire hydrant": (0.75, (
        ("e", "m", .22, .02, .78, .36),
        ("r", "d", .42, 0, .58, .08),
        ("r", "m", .24, .18, .76, .88),
        ("r", "m", 0, .36, 1, .54),
        ("e", "d", .38, .34, .62, .56),
        ("r", "m", .10, .86, .90, 1),
    )),
    "person": (0.45, (
        ("e", "d", .28, 0, .72, .20),
        ("r", "d", .42, .18, .58, .26),
        ("p", "m", .12, .24, .88, .24, .78, .62, .22, .62),
        ("l", "m", .14, .17, .27, .07, .58), ("l", "m", .14, .83, .27, .93, .58),
        ("r", "m", .24, .60, .46, 1), ("r", "m", .54, .60, .76, 1),
    )),
    "dog": (1.5, (
        ("e", "m", .14, .30, .78, .66),
        ("e", "m", .64, .08, .90, .44),
        ("p", "m", .84, .20, 1, .25, 1, .38, .84, .40),
        ("p", "d", .64, .12, .74, .08, .72, .36),
        ("e", "f", .95, .23, 1, .31),
        ("e", "f", .80, .16, .84, .23),
        ("r", "m", .20, .55, .28, 1), ("r", "m", .32, .55, .40, 1),
        ("r", "m", .56, .55, .64, 1), ("r", "m", .68, .55, .76, 1),
        ("l", "m", .08, .18, .42, .04, .12),
    )),
    "cat": (0.85, (
        ("e", "m", .12, .38, .80, 1),
        ("e", "m", .22, .08, .72, .50),
        ("p", "m", .24, .24, .26, 0, .42, .12),
        ("p", "m", .52, .12, .70, 0, .70, .24),
        ("e", "f", .33, .22, .42, .31), ("e", "f", .52, .22, .61, .31),
        ("p", "f", .43, .35, .51, .35, .47, .40),
        ("l", "m", .09, .74, .92, .95, .80, .93, .48),
    )),
    "bird": (1.4, (
        ("p", "m", .20, .50, 0, .30, 0, .64),
        ("e", "m", .12, .32, .72, .74),
        ("e", "m", .56, .12, .86, .50),
        ("p", "d", .84, .26, 1, .34, .84, .40),
        ("p", "d", .26, .44, .56, .46, .40, .64),
        ("e", "f", .71, .23, .77, .31),
        ("l", "d", .05, .40, .72, .38, 1), ("l", "d", .05, .50, .72, .52, 1),
    )),
    "umbrella": (1.0, (
        ("c", "m", 180, 360, 0, .06, 1, .96),
        ("l", "d", .06, .50, .47, .50, .92, .44, .98, .36, .92),
        ("l", "d", .05, .50, .10, .50, 0),
    )),
    "boat": (1.3, (
        ("p", "m", 0, .62, 1, .62, .84, .92, .16, .92),
        ("r", "d", .05, .68, .95, .72),
        ("l", "d", .05, .50, .02, .50, .64),
        ("p", "m", .50, .06, .50, .56, .90, .56),
        ("p", "m", .50, .14, .50, .56, .14, .56),
    )),
    "surfboard": (0.34, (
        ("e", "m", 0, .08, 1, 1),
        ("p", "m", .10, .32, .50, 0, .90, .32),
        ("l", "d", .12, .50, .12, .50, .90),
    )),
    "ball": (1.0, (
        ("e", "m", 0, 0, 1, 1),
        ("l", "d", .06, .50, .02, .36, .30, .32, .50, .36, .70, .50, .98),
        ("l", "d", .06, .50, .02, .64, .30, .68, .50, .64, .70, .50, .98),
        ("l", "d", .06, .50, .02, .50, .98),
    )),
    "kite": (0.7, (
        ("p", "m", .50, 0, 1, .30, .50, .70, 0, .30),
        ("l", "d", .04, .50, 0, .50, .70), ("l", "d", .04, .02, .30, .98, .30),
        ("l", "m", .05, .50, .70, .40, .80, .60, .90, .50, 1),
        ("p", "m", .30, .72, .46, .80, .30, .88), ("p", "m", .70, .82, .54, .90, .70, .98),
    )),
    "cow": (1.5, (
        ("r", "m", .10, .24, .76, .64),
        ("p", "m", .70, .24, .76, .14, .98, .14, .96, .46, .80, .48, .72, .40),
        ("l", "d", .05, .77, .16, .72, .02), ("l", "d", .05, .93, .16, .97, .02),
        ("e", "d", .22, .30, .38, .46), ("e", "d", .48, .40, .62, .56), ("e", "d", .60, .27, .70, .37),
        ("e", "f", .83, .24, .87, .30),
        ("r", "m", .12, .60, .20, 1), ("r", "m", .26, .60, .34, 1),
        ("r", "m", .56, .60, .64, 1), ("r", "m", .68, .60, .76, 1),
        ("e", "d", .42, .58, .54, .72),
        ("l", "m", .04, .11, .28, .03, .62),
    )),
    "horse": (1.4, (
        ("e", "m", .12, .28, .74, .64),
        ("p", "m", .60, .36, .76, .08, .86, .12, .76, .50),
        ("p", "m", .74, .04, .86, .04, 1, .24, .95, .32, .80, .22),
        ("p", "d", .74, .06, .79, .04, .66, .38, .61, .34),
        ("r", "m", .18, .52, .24, 1), ("r", "m", .28, .52, .34, 1),
        ("r", "m", .56, .52, .62, 1), ("r", "m", .66, .52, .72, 1),
        ("p", "d", .16, .36, .12, .32, .02, .74, .08, .76),
    )),
    "sheep": (1.4, (
        ("e", "d", .72, .18, .96, .52),
        ("p", "d", .76, .24, .64, .30, .76, .36),
        ("r", "d", .24, .66, .31, 1), ("r", "d", .36, .66, .43, 1),
        ("r", "d", .54, .66, .61, 1), ("r", "d", .66, .66, .73, 1),
        ("e", "m", .06, .24, .40, .64), ("e", "m", .26, .10, .60, .50), ("e", "m", .46, .16, .80, .56),
        ("e", "m", .16, .38, .72, .76), ("e", "m", .48, .36, .80, .72),
        ("e", "f", .86, .28, .90, .34),
    )),
    "pig": (1.6, (
        ("e", "m", .06, .20, .82, .82),
        ("e", "m", .62, .18, .92, .66),
        ("e", "m", .86, .32, 1, .54),
        ("p", "m", .66, .24, .70, .02, .80, .20),
        ("e", "f", .90, .38, .93, .47), ("e", "f", .95, .38, .98, .47),
        ("e", "f", .76, .28, .80, .35),
        ("r", "m", .18, .72, .27, 1), ("r", "m", .32, .72, .41, 1),
        ("r", "m", .52, .72, .61, 1), ("r", "m", .66, .72, .75, 1),
        ("l", "d", .05, .08, .44, .01, .36, .04, .26, .09, .30),
    )),
    "tractor": (1.3, (
        ("r", "m", .12, 0, .50, .50),
        ("r", "d", .18, .06, .44, .30),
        ("r", "m", .44, .34, .98, .66),
        ("l", "d", .05, .86, .34, .86, .10),
        ("e", "m", 0, .40, .46, 1), ("o", "d", .10, 0, .40, .46, 1),
        ("e", "m", .68, .62, .97, 1), ("o", "d", .08, .68, .62, .97, 1),
    )),
    "bear": (1.45, (
        ("e", "m", .04, .22, .80, .78),
        ("e", "m", .30, .12, .62, .44),
        ("e", "m", .66, .16, .94, .54),
        ("e", "m", .67, .08, .77, .24), ("e", "m", .82, .08, .92, .24),
        ("e", "d", .86, .34, 1, .50),
        ("e", "f", .76, .26, .80, .33),
        ("r", "m", .10, .60, .25, 1), ("r", "m", .28, .60, .42, 1),
        ("r", "m", .52, .60, .66, 1), ("r", "m", .68, .60, .80, 1),
    )),
    "deer": (1.1, (
        ("e", "m", .10, .42, .72, .72),
        ("p", "m", .60, .50, .70, .22, .80, .24, .74, .56),
        ("p", "m", .68, .20, .80, .16, .96, .30, .92, .36, .72, .32),
        ("l", "d", .04, .72, .20, .64, .04), ("l", "d", .04, .68, .12, .58, .10),
        ("l", "d", .04, .78, .18, .86, .02), ("l", "d", .04, .82, .10, .92, .08),
        ("r", "m", .14, .64, .19, 1), ("r", "m", .24, .64, .29, 1),
        ("r", "m", .56, .64, .61, 1), ("r", "m", .64, .64, .69, 1),
        ("e", "d", .07, .44, .15, .53),
    )),
    "tree": (0.8, (
        ("r", "d", .40, .60, .60, 1),
        ("e", "m", .04, .18, .56, .66), ("e", "m", .44, .18, .96, .66),
        ("e", "m", .18, 0, .82, .48), ("e", "m", .16, .34, .84, .72),
    )),
    "mushroom": (1.0, (
        ("r", "d", .37, .44, .63, .94),
        ("e", "d", .30, .86, .70, 1),
        ("c", "m", 180, 360, 0, 0, 1, 1),
        ("e", "f", .18, .22, .30, .34), ("e", "f", .44, .08, .56, .20), ("e", "f", .70, .24, .80, .36),
    )),
    "bench": (2.1, (
        ("r", "d", .10, 0, .15, .56), ("r", "d", .85, 0, .90, .56),
        ("r", "m", .04, .04, .96, .18), ("r", "m", .04, .26, .96, .40),
        ("r", "m", 0, .48, 1, .62),
        ("r", "d", .08, .62, .14, 1), ("r", "d", .86, .62, .92, 1),
    )),
    "frisbee": (2.4, (
        ("e", "m", 0, .10, 1, .90),
        ("o", "d", .08, .16, .24, .84, .66),
    )),
    "cup": (1.15, (
        ("o", "m", .13, .54, .24, .98, .74),
        ("p", "m", .04, .06, .72, .06, .66, 1, .10, 1),
        ("e", "d", .04, 0, .72, .12),
    )),
    "bowl": (2.0, (
        ("p", "m", 0, .12, 1, .12, .97, .36, .88, .56, .74, .72, .58, .80, .42, .80, .26, .72, .12, .56, .03, .36),
        ("r", "m", .34, .80, .66, 1),
        ("r", "d", 0, .10, 1, .18),
    )),
    "bottle": (0.38, (
        ("r", "d", .30, 0, .70, .08),
        ("r", "m", .34, .06, .66, .28),
        ("p", "m", .34, .24, .66, .24, 1, .44, 0, .44),
        ("r", "m", 0, .42, 1, 1),
        ("r", "d", .08, .56, .92, .76),
    )),
    "oven": (0.95, (
        ("r", "m", .14, 0, .40, .08), ("r", "m", .60, 0, .86, .08),
        ("r", "m", 0, .06, 1, .95),
        ("e", "f", .12, .13, .20, .21), ("e", "f", .32, .13, .40, .21),
        ("e", "f", .60, .13, .68, .21), ("e", "f", .80, .13, .88, .21),
        ("r", "f", .14, .30, .86, .33),
        ("r", "d", .22, .46, .78, .78),
        ("r", "m", .04, .94, .14, 1), ("r", "m", .86, .94, .96, 1),
    )),
    "banana": (1.7, (
        ("p", "m", .04, .28, .14, .64, .34, .88, .62, .98, .88, .86, 1, .60, .90, .52, .74, .62,
         .52, .64, .34, .54, .22, .40, .14, .24),
        ("p", "d", 0, .10, .10, .06, .15, .26, .04, .30),
        ("e", "d", .93, .54, 1, .66),
    )),
    "apple": (1.0, (
        ("e", "m", 0, .18, .62, 1), ("e", "m", .38, .18, 1, 1), ("e", "m", .10, .30, .90, 1),
        ("l", "d", .06, .50, .34, .54, .04),
        ("p", "d", .54, .14, .74, 0, .94, .06, .70, .18),
    )),
    "cake": (1.2, (
        ("r", "d", .24, .10, .30, .34), ("r", "d", .47, .10, .53, .34), ("r", "d", .70, .10, .76, .34),
        ("e", "f", .23, 0, .31, .10), ("e", "f", .46, 0, .54, .10), ("e", "f", .69, 0, .77, .10),
        ("r", "m", .12, .32, .88, .52),
        ("r", "m", 0, .50, 1, 1),
        ("r", "d", .12, .32, .88, .36), ("r", "d", 0, .50, 1, .53),
    )),
    "laptop": (1.45, (
        ("r", "m", .12, 0, .88, .68),
        ("r", "d", .22, .10, .78, .54),
        ("p", "m", .12, .68, .88, .68, 1, .96, 0, .96),
        ("r", "d", .40, .80, .60, .90),
    )),
    "book": (1.3, (
        ("p", "m", .22, 0, 1, 0, .78, .62, 0, .62),
        ("p", "d", 0, .62, .78, .62, .78, .80, 0, .80),
        ("p", "d", .78, .62, 1, 0, 1, .18, .78, .80),
        ("p", "m", 0, .80, .78, .80, 1, .18, 1, .30, .80, .94, 0, .94),
        ("l", "d", .05, .30, .16, .74, .16), ("l", "d", .05, .24, .30, .60, .30),
    )),
    "clock": (0.9, (
        ("e", "m", 0, 0, .34, .30), ("e", "m", .66, 0, 1, .30),
        ("l", "m", .08, .22, .84, .10, .98), ("l", "m", .08, .78, .84, .90, .98),
        ("e", "m", .04, .10, .96, .94),
        ("l", "d", .06, .50, .52, .50, .26), ("l", "d", .06, .50, .52, .72, .52),
        ("r", "f", .47, .14, .53, .20), ("r", "f", .47, .84, .53, .90),
        ("r", "f", .09, .49, .15, .55), ("r", "f", .85, .49, .91, .55),
    )),
    "chair": (0.7, (
        ("r", "m", .12, 0, .88, .36),
        ("r", "d", .24, .08, .34, .30), ("r", "d", .45, .08, .55, .30), ("r", "d", .66, .08, .76, .30),
        ("r", "m", .12, .34, .20, .52), ("r", "m", .80, .34, .88, .52),
        ("p", "m", .12, .50, .88, .50, 1, .62, 0, .62),
        ("r", "m", .02, .60, .12, 1), ("r", "m", .88, .60, .98, 1),
        ("r", "m", .20, .60, .26, .88), ("r", "m", .74, .60, .80, .88),
    )),
    "teddy bear": (0.85, (
        ("e", "m", .14, 0, .38, .22), ("e", "m", .62, 0, .86, .22),
        ("e", "m", .20, .04, .80, .50),
        ("e", "m", .22, .44, .78, .96),
        ("e", "m", 0, .48, .34, .70), ("e", "m", .66, .48, 1, .70),
        ("e", "m", .12, .82, .42, 1), ("e", "m", .58, .82, .88, 1),
        ("e", "f", .35, .18, .43, .27), ("e", "f", .57, .18, .65, .27),
        ("e", "d", .42, .29, .58, .41),
        ("e", "d", .38, .60, .62, .82),
    )),
    "potted plant": (0.75, (
        ("p", "m", .50, .64, .36, .18, .50, 0, .64, .18),
        ("p", "m", .50, .64, .04, .24, .16, .12, .40, .40),
        ("p", "m", .50, .64, .96, .24, .84, .12, .60, .40),
        ("p", "m", .50, .64, 0, .52, .04, .38, .30, .48),
        ("p", "m", .50, .64, 1, .52, .96, .38, .70, .48),
        ("p", "d", .22, .62, .78, .62, .70, 1, .30, 1),
        ("r", "d", .16, .58, .84, .68),
    )),
}

# ---------------------------------------------------------------------------------------------------
# Backgrounds: per place, a palette (indices 0..n-1 of the scene palette) and a drawing function.
# ---------------------------------------------------------------------------------------------------
BACKGROUNDS: dict[str, tuple[tuple[int, int, int], ...]] = {
    #          0                1                2                3                4
    "street": ((92, 96, 106), (178, 172, 160), (228, 222, 176), (200, 196, 184)),  # road, pavement, dash, kerb
    "beach": ((176, 214, 238), (74, 150, 184), (196, 228, 240), (228, 206, 158), (206, 184, 138)),  # sky, sea, foam, sand, wet sand
    "farm": ((178, 212, 236), (176, 198, 118), (158, 180, 100), (172, 134, 96)),  # sky, field, furrow, fence
    "kitchen": ((198, 210, 216), (172, 184, 192), (184, 160, 128), (160, 120, 88)),  # tile, grout, counter, counter edge
    "forest": ((48, 80, 56), (38, 64, 46), (62, 96, 66), (72, 66, 52)),  # ground, dark band, light band, trunk
    "park": ((146, 194, 118), (214, 198, 162), (190, 176, 140), (128, 178, 104)),  # grass, path, path edge, dark grass
    "harbour": ((180, 212, 234), (62, 106, 148), (96, 138, 176), (166, 132, 92), (104, 90, 84)),  # sky, water, wave, dock, plank gap
    "office": ((214, 206, 184), (188, 180, 158), (158, 118, 80), (104, 90, 84), (196, 214, 226)),  # wall, skirting, desk, desk edge, window
}
_JITTER = 6  # per-scene tint, +-6 per channel: enough to vary, too little to reach a forbidden colour
# Scenery stays this far (Euclidean RGB) from every object colour, so objects stand out to the eye too.
_MIN_SEPARATION = 40.0


def _check_palettes() -> None:
    # Fail at import if an edit lets a scenery colour reach a colour that marks a drawn thing: object
    # colours by a visible distance, detail and sign colours by more than any tint (exact disjointness).
    assert set(BACKGROUNDS) == set(vocab.PLACES)
    assert set(ICONS) == set(vocab.OBJECTS), "every noun needs exactly one icon"
    for place, palette in BACKGROUNDS.items():
        for c in palette:
            for f in vocab.COLOURS.values():
                assert math.dist(c, f) >= _MIN_SEPARATION + _JITTER * math.sqrt(3), f"{place}: {c} too close to {f}"
            for f in (INK, PALE, SIGN_BOARD, SIGN_INK):
                assert max(abs(a - b) for a, b in zip(c, f)) > 2 * _JITTER, f"{place}: {c} too close to {f}"


_check_palettes()


def _bg_street(d: ImageDraw.ImageDraw, s: int, r: bytes) -> None:
    d.rectangle((0, 0, s, s), fill=0)
    top = int(s * (0.08 + 0.04 * r[3] / 255))
    d.rectangle((0, 0, s, top), fill=1)
    d.rectangle((0, top, s, top + max(1, s // 64)), fill=3)
    bottom = s - int(s * (0.06 + 0.04 * r[4] / 255))
    d.rectangle((0, bottom, s, s), fill=1)
    d.rectangle((0, bottom - max(1, s // 64), s, bottom), fill=3)
    # Lane dashes: thin, flat and evenly spaced, so nothing reads as an object.
    y = int(s * (0.48 + 0.06 * r[5] / 255))
    dash, gap = max(3, s // 12), max(2, s // 16)
    x = -int((dash + gap) * r[6] / 255)
    while x < s:
        d.rectangle((x, y, x + dash, y + max(1, s // 64)), fill=2)
        x += dash + gap


def _bg_beach(d, s, r):
    d.rectangle((0, 0, s, s), fill=3)
    sky = int(s * (0.10 + 0.06 * r[3] / 255))
    shore = int(s * (0.38 + 0.08 * r[4] / 255))
    d.rectangle((0, 0, s, sky), fill=0)
    d.rectangle((0, sky, s, shore), fill=1)
    d.rectangle((0, shore, s, shore + max(2, s // 32)), fill=4)  # wet sand
    d.rectangle((0, shore - max(1, s // 64), s, shore), fill=2)  # foam line
    for i in range(3):  # wave lines across the sea
        y = sky + (shore - sky) * (i + 1) // 4
        off = int(s * 0.2 * ((r[5 + i] / 255 + i * 0.37) % 1))
        for x in range(-s // 2 + off, s, s // 3):
            d.line((x, y, x + s // 8, y), fill=2, width=max(1, s // 128))


def _bg_farm(d, s, r):
    d.rectangle((0, 0, s, s), fill=1)
    horizon = int(s * (0.14 + 0.06 * r[3] / 255))
    d.rectangle((0, 0, s, horizon), fill=0)
    step = max(4, s // 10)
    for y in range(horizon + step // 2 + int(step * r[4] / 512), s, step):  # furrows
        d.line((0, y, s, y), fill=2, width=max(1, s // 128))
    # A low fence just under the horizon: two rails and posts.
    rail = max(1, s // 96)
    y0 = horizon + max(2, s // 32)
    d.rectangle((0, y0, s, y0 + rail), fill=3)
    d.rectangle((0, y0 + 3 * rail + 2, s, y0 + 4 * rail + 2), fill=3)
    post = max(6, s // 9)
    for x in range(int(post * r[5] / 255), s, post):
        d.rectangle((x, y0 - rail, x + rail, y0 + 5 * rail + 3), fill=3)


def _bg_kitchen(d, s, r):
    d.rectangle((0, 0, s, s), fill=0)
    counter = int(s * (0.60 + 0.06 * r[3] / 255))
    tile = max(6, s // (8 + r[4] % 3))
    for x in range(-int(tile * r[5] / 255), s, tile):
        d.line((x, 0, x, counter), fill=1, width=1)
    for y in range(0, counter, tile):
        d.line((0, y, s, y), fill=1, width=1)
    d.rectangle((0, counter, s, s), fill=2)
    d.rectangle((0, counter, s, counter + max(2, s // 32)), fill=3)
    door = max(12, s // 4)
    for x in range(int(door * r[6] / 255) % door, s, door):  # cabinet door seams
        d.line((x, counter + s // 16, x, s), fill=3, width=1)


def _bg_forest(d, s, r):
    d.rectangle((0, 0, s, s), fill=0)
    # Full-height bands of a shade or two: a wall of trunks far away, no crowns, so never a "tree".
    x, i = -int(s * 0.1 * r[3] / 255), 0
    while x < s:
        w = max(2, int(s * (0.03 + 0.05 * r[(4 + i) % 32] / 255)))
        d.rectangle((x, 0, x + w, s), fill=(1, 3, 2)[i % 3])
        x += w + max(4, int(s * (0.08 + 0.10 * r[(12 + i) % 32] / 255)))
        i += 1
    floor = int(s * (0.86 + 0.06 * r[20] / 255))
    d.rectangle((0, floor, s, s), fill=1)


def _bg_park(d, s, r):
    d.rectangle((0, 0, s, s), fill=0)
    step = max(6, s // 6)
    for y in range(int(step * r[3] / 255) % step, s, step):  # mowing stripes
        d.rectangle((0, y, s, y + step // 2), fill=3)
    # A gently curving path from the left edge to the bottom edge.
    a, b = 0.30 + 0.25 * r[4] / 255, 0.45 + 0.25 * r[5] / 255
    w = 0.10
    pts = [(0, s * a), (s * 0.4, s * (a + 0.15)), (s * b, s), (s * (b + w * 1.6), s),
           (s * 0.4 + s * w, s * (a + 0.15 - w * 0.5)), (0, s * (a - w))]
    d.polygon(pts, fill=2)
    inner = [(0, s * (a - 0.015)), (s * 0.4, s * (a + 0.135)), (s * (b + 0.02), s), (s * (b + w * 1.4), s),
             (s * 0.4 + s * w * 0.8, s * (a + 0.15 - w * 0.6)), (0, s * (a - w + 0.015))]
    d.polygon(inner, fill=1)


def _bg_harbour(d, s, r):
    d.rectangle((0, 0, s, s), fill=1)
    sky = int(s * (0.10 + 0.06 * r[3] / 255))
    d.rectangle((0, 0, s, sky), fill=0)
    dock = int(s * (0.78 + 0.08 * r[4] / 255))
    for i, y in enumerate(range(sky + s // 12, dock, s // 10)):  # ripples
        off = int(s * ((r[5 + i % 8] / 255 + 0.3 * i) % 1))
        for x in range(off - s, s, s // 2):
            d.line((x, y, x + s // 6, y), fill=2, width=max(1, s // 128))
    d.rectangle((0, dock, s, s), fill=3)
    plank = max(4, s // 20)
    for y in range(dock + plank, s, plank):
        d.line((0, y, s, y), fill=4, width=1)


def _bg_office(d, s, r):
    d.rectangle((0, 0, s, s), fill=0)
    desk = int(s * (0.62 + 0.06 * r[3] / 255))
    # A window pane high on the wall: a plain rectangle with a frame cross.
    wx = int(s * (0.05 + 0.55 * r[4] / 255))
    ww, wh = s // 3, s // 5
    d.rectangle((wx, s // 12, wx + ww, s // 12 + wh), fill=4, outline=1, width=max(1, s // 64))
    d.line((wx + ww // 2, s // 12, wx + ww // 2, s // 12 + wh), fill=1, width=max(1, s // 64))
    d.rectangle((0, desk - max(2, s // 32), s, desk), fill=1)
    d.rectangle((0, desk, s, s), fill=2)
    d.rectangle((0, desk, s, desk + max(2, s // 40)), fill=3)


_BG_DRAW = {
    "street": _bg_street, "beach": _bg_beach, "farm": _bg_farm, "kitchen": _bg_kitchen,
    "forest": _bg_forest, "park": _bg_park, "harbour": _bg_harbour, "office": _bg_office,
}

# ---------------------------------------------------------------------------------------------------
# Geometry
# ---------------------------------------------------------------------------------------------------
_BG_SLOTS = 16  # palette indices 0..15: scenery
_FINE_DETAIL_PX = 14  # icons shorter than this skip their "f" primitives
_THING_SLOTS = 8  # then 8 indices per drawn thing: 0 main / board, 1 detail / ink


def _check_size(size: int) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool):
        raise ValueError(f"image size must be an int, got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"image size must be in {MIN_SIZE}..{MAX_SIZE} pixels, got {size}")


def cell_box(size: int, row: str, col: str) -> tuple[int, int, int, int]:
    """The pixels a thing at (row, col) may paint: its grid cell less a margin, as inclusive
    (x0, y0, x1, y1). The margin keeps neighbouring cells' icons apart."""
    r, c = vocab.ROWS.index(row), vocab.COLUMNS.index(col)
    margin = max(2, size // 64)
    x0, x1 = round(c * size / 3), round((c + 1) * size / 3) - 1
    y0, y1 = round(r * size / 2), round((r + 1) * size / 2) - 1
    return x0 + margin, y0 + margin, x1 - margin, y1 - margin


@functools.lru_cache(maxsize=4096)
def instance_boxes(box: tuple[int, int, int, int], n: int, aspect: float) -> tuple[tuple[int, int, int, int], ...]:
    """Inclusive pixel boxes for ``n`` icons of width/height ``aspect`` inside ``box``: the grid
    (1 x n, n x 1, 2 x 2, ...) that lets them be largest, with a gap so instances never touch."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0 + 1, y1 - y0 + 1
    gap = max(2, (x1 - x0) // 16)
    best = None
    for rows in range(1, n + 1):
        cols = -(-n // rows)
        sw, sh = (w - (cols - 1) * gap) // cols, (h - (rows - 1) * gap) // rows
        bh = min(sh, sw / aspect)
        bw, bh = max(1, int(bh * aspect)), max(1, int(bh))
        if best is None or bw * bh > best[0]:
            best = (bw * bh, rows, cols, sw, sh, bw, bh)
    _, rows, cols, sw, sh, bw, bh = best
    boxes = []
    top = y0 + (h - (rows * sh + (rows - 1) * gap)) // 2
    for i in range(n):
        r, c = divmod(i, cols)
        in_row = min(cols, n - r * cols)
        left = x0 + (w - (in_row * sw + (in_row - 1) * gap)) // 2
        sx, sy = left + c * (sw + gap), top + r * (sh + gap)
        bx, by = sx + (sw - bw) // 2, sy + (sh - bh) // 2
        boxes.append((bx, by, bx + bw - 1, by + bh - 1))
    return tuple(boxes)


def _draw_icon(d: ImageDraw.ImageDraw, name: str, box: tuple[int, int, int, int], main: int, detail: int) -> None:
    x0, y0, x1, y1 = box
    sx, sy = x1 - x0, y1 - y0
    unit = min(sx, sy) + 1

    def pts(c):  # unit coordinates -> pixel points, rounded half up (deterministic, monotone)
        return [(x0 + math.floor(c[i] * sx + 0.5), y0 + math.floor(c[i + 1] * sy + 0.5)) for i in range(0, len(c), 2)]

    small = unit < _FINE_DETAIL_PX
    for p in ICONS[name][1]:
        if p[1] == "f" and small:
            continue
        kind, fill = p[0], main if p[1] == "m" else detail
        if kind == "r":
            d.rectangle(pts(p[2:]), fill=fill)
        elif kind == "e":
            d.ellipse(pts(p[2:]), fill=fill)
        elif kind == "p":
            d.polygon(pts(p[2:]), fill=fill)
        elif kind == "l":
            # A wide line spills half its width past its end points: pull them in so it stays in the box.
            width = max(1, math.floor(p[2] * unit + 0.5))
            m = width // 2
            xy = [(min(max(x, x0 + m), x1 - m), min(max(y, y0 + m), y1 - m)) for x, y in pts(p[3:])]
            d.line(xy, fill=fill, width=width)
        elif kind == "o":
            d.ellipse(pts(p[3:]), outline=fill, width=max(1, math.floor(p[2] * unit + 0.5)))
        elif kind == "c":
            d.chord(pts(p[4:]), p[2], p[3], fill=fill)
        else:
            raise ValueError(f"icon {name}: unknown primitive {kind!r}")


def detail_colour(colour: str) -> tuple[int, int, int]:
    """The detail colour an object of ``colour`` is drawn with: light on dark objects, ink on light."""
    r, g, b = vocab.COLOURS[colour]
    return PALE if 0.299 * r + 0.587 * g + 0.114 * b < _DARK_MAIN else INK


@functools.lru_cache(maxsize=64)
def _font(px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


_MIN_SQUEEZE = 0.6  # long words are condensed to at most this width rather than set in a tiny font


def _text_mask(text: str, px: int, width: int) -> Image.Image:
    """``text`` in the default font at ``px`` pixels as a binary "L" mask, condensed to ``width``."""
    font = _font(px)
    l, t, r, b = font.getbbox(text, mode="1")
    mask = Image.new("L", (r - l, b - t), 0)
    d = ImageDraw.Draw(mask)
    d.fontmode = "1"  # binary glyphs: only exact palette colours, no blended text pixels
    d.text((-l, -t), text, fill=255, font=font)
    if width < mask.width:
        # Box-filter then threshold at a low level: a condensed glyph keeps its thin strokes.
        mask = mask.resize((width, mask.height), Image.BOX)
    return mask.point(lambda v: 255 if v >= 96 else 0)  # two-valued, so pasting never blends indices


@functools.lru_cache(maxsize=4096)
def _sign_layout(text: str, box: tuple[int, int, int, int]):
    """Board, border width, post, text origin and text mask for a sign in ``box``: the largest font
    whose text fits the board (condensed up to ``_MIN_SQUEEZE`` if that lets it be larger), and a
    board just tall enough for it, on a post."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0 + 1, y1 - y0 + 1
    border = max(1, w // 40)
    inner_w = w - 2 * (border + max(2, w // 16))
    px, tw = 6, None
    for cand in range(6, max(7, int(h * 0.36)) + 1):
        l, t, r, b = _font(cand).getbbox(text, mode="1")
        if (r - l) * _MIN_SQUEEZE > inner_w or b - t > h * 0.4:
            break
        px, tw = cand, min(r - l, inner_w)
    mask = _text_mask(text, px, tw if tw is not None else inner_w)
    th = mask.height
    bh = min(h, th + 2 * border + 2 * max(2, h // 16))
    by0 = y0 + (h - bh) // 3  # board above centre, a post below it
    board = (x0, by0, x1, by0 + bh - 1)
    origin = (x0 + (w - mask.width) // 2, by0 + (bh - th) // 2)
    post_w = max(2, w // 12)
    post = (x0 + (w - post_w) // 2, by0 + bh, x0 + (w + post_w) // 2 - 1, y1)
    return board, border, post, origin, mask


def _draw_sign(img: Image.Image, d: ImageDraw.ImageDraw, text: str, box, board_idx: int, ink_idx: int) -> None:
    board, border, post, origin, mask = _sign_layout(text, box)
    if post[3] > post[1]:
        d.rectangle(post, fill=ink_idx)
    d.rectangle(board, fill=board_idx, outline=ink_idx, width=border)
    img.paste(ink_idx, origin, mask)  # the mask is 0/255 only, so palette indices never blend


def _draw(scene: Scene, size: int, with_masks: bool):
    _check_size(size)
    size = int(size)
    seed = hashlib.sha256(scene.scene_id.encode()).digest()  # never hash(): it is salted per process

    palette = np.zeros((256, 3), dtype=np.int32)
    tint = np.array([seed[0], seed[1], seed[2]]) * (2 * _JITTER) // 255 - _JITTER
    bg = np.array(BACKGROUNDS[scene.place])
    palette[: len(bg)] = np.clip(bg + tint, 0, 255)

    img = Image.new("P", (size, size), 0)
    d = ImageDraw.Draw(img)
    _BG_DRAW[scene.place](d, size, seed)
    background = np.array(img) if with_masks else None

    names = []
    for k, obj in enumerate(scene.objects):
        base = _BG_SLOTS + _THING_SLOTS * k
        palette[base], palette[base + 1] = vocab.COLOURS[obj.colour], detail_colour(obj.colour)
        box = cell_box(size, obj.row, obj.col)
        for inst in instance_boxes(box, obj.count, ICONS[obj.name][0]):
            _draw_icon(d, obj.name, inst, base, base + 1)
        names.append(obj.name)
    if scene.sign is not None:
        base = _BG_SLOTS + _THING_SLOTS * len(scene.objects)
        palette[base], palette[base + 1] = SIGN_BOARD, SIGN_INK
        _draw_sign(img, d, scene.sign.text, cell_box(size, scene.sign.row, scene.sign.col), base, base + 1)
        names.append("sign")

    img.putpalette(palette.astype(np.uint8).tobytes())
    rgb = img.convert("RGB")
    if not with_masks:
        return rgb, None, None
    idx = np.asarray(img)
    masks = {}
    for k, name in enumerate(names):
        base = _BG_SLOTS + _THING_SLOTS * k
        masks[name] = (idx >= base) & (idx < base + _THING_SLOTS)
    return rgb, masks, palette.astype(np.uint8)[background]


def render(scene: Scene, size: int = 128) -> Image.Image:
    """The scene as a ``size`` x ``size`` RGB image (64..512 pixels)."""
    return _draw(scene, size, with_masks=False)[0]


def render_with_masks(scene: Scene, size: int = 128) -> tuple[Image.Image, dict[str, np.ndarray], np.ndarray]:
    """The image, a boolean mask per drawn thing (keyed by object name, and "sign") marking the
    pixels it painted, and the background alone as a (size, size, 3) uint8 array."""
    return _draw(scene, size, with_masks=True)


def render_icon(name: str, colour: str, width: int, height: int) -> Image.Image:
    """One icon in ``colour``, stretched over a ``width`` x ``height`` box on a plain light-gray
    ground (for figures and icon sheets)."""
    img = Image.new("P", (width, height), 0)
    img.putpalette(bytes((200, 200, 200, *vocab.COLOURS[colour], *detail_colour(colour))))
    _draw_icon(ImageDraw.Draw(img), name, (0, 0, width - 1, height - 1), 1, 2)
    return img.convert("RGB")
