"""The closed vocabulary of the synthetic world: colours, shapes, actions, relations.

Every word a caption may use for a concept lives here, with the lemma the caption
parser is expected to report for it. Captions use progressive forms ("is moving
toward"), which spaCy's small English model tags correctly; simple-present forms
("moves toward") are often mis-tagged as nouns.
"""

from __future__ import annotations

# Object colours: name -> RGB in [0, 1]. Saturated, so they stand out on muted backgrounds.
COLOURS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.16, 0.14),
    "orange": (0.96, 0.52, 0.10),
    "yellow": (0.95, 0.85, 0.15),
    "green": (0.20, 0.70, 0.25),
    "blue": (0.15, 0.35, 0.90),
    "purple": (0.55, 0.22, 0.78),
    "pink": (0.98, 0.55, 0.75),
    "white": (0.95, 0.95, 0.95),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "hexagon", "heart")

# Nouns a caption may use for a shape (all are their own spaCy lemma).
SHAPE_NOUNS: dict[str, tuple[str, ...]] = {
    "circle": ("ball", "circle"),
    "square": ("cube", "square", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
    "diamond": ("diamond",),
    "hexagon": ("hexagon",),
    "heart": ("heart",),
}

SIZES: dict[str, float] = {"small": 0.075, "medium": 0.095, "large": 0.115}
SIZE_WORDS: dict[str, tuple[str, ...]] = {"small": ("small", "little"), "medium": (), "large": ("big", "large")}

TEXTURES: tuple[str, ...] = ("plain", "striped", "spotted")

MOVES: tuple[str, ...] = ("move_left", "move_right", "move_up", "move_down")
# Actions that keep an object in place (its centre does not translate).
IN_PLACE: tuple[str, ...] = ("grow", "shrink", "blink", "spin")
ACTIONS: tuple[str, ...] = MOVES + IN_PLACE + ("hop",)

# Unit direction of each move in image coordinates (y grows downwards).
MOVE_DIRECTION: dict[str, tuple[int, int]] = {
    "move_left": (-1, 0),
    "move_right": (1, 0),
    "move_up": (0, -1),
    "move_down": (0, 1),
}

# Progressive verb phrases per action: (phrase after "is", verb lemma).
ACTION_PHRASES: dict[str, tuple[tuple[str, str], ...]] = {
    "move_left": (("moving left", "move"), ("sliding left", "slide")),
    "move_right": (("moving right", "move"), ("sliding right", "slide")),
    "move_up": (("moving up", "move"), ("rising", "rise")),
    "move_down": (("moving down", "move"), ("sinking", "sink"), ("falling", "fall")),
    "grow": (("growing", "grow"), ("expanding", "expand")),
    "shrink": (("shrinking", "shrink"),),
    "blink": (("blinking", "blink"), ("flickering", "flicker"), ("flashing", "flash")),
    "spin": (("spinning", "spin"), ("rotating", "rotate")),
    "hop": (("hopping", "hop"), ("jumping", "jump")),
}

DYNAMIC_RELATIONS: tuple[str, ...] = ("approach", "move_away", "collide", "jump_over")
STATIC_RELATIONS: tuple[str, ...] = ("left_of", "above")
RELATIONS: tuple[str, ...] = DYNAMIC_RELATIONS + STATIC_RELATIONS

# Active phrases "<subject> is <phrase> <object>": (phrase, predicate lemma).
RELATION_ACTIVE: dict[str, tuple[tuple[str, str], ...]] = {
    "approach": (("approaching", "approach"), ("moving toward", "move toward"),
                 ("moving towards", "move towards")),
    "move_away": (("moving away from", "move away from"), ("retreating from", "retreat from")),
    "collide": (("colliding with", "collide with"), ("crashing into", "crash into"),
                ("bumping into", "bump into"), ("hitting", "hit")),
    "jump_over": (("jumping over", "jump over"), ("hopping over", "hop over"),
                  ("leaping over", "leap over")),
    "left_of": (("to the left of", "to the left of"),),
    "above": (("above", "above"),),
}
# Passive phrases "<object> is <phrase> <subject>"; the triplet keeps the agent as subject.
RELATION_PASSIVE: dict[str, tuple[tuple[str, str], ...]] = {
    "approach": (("being approached by", "approach"),),
    "collide": (("being hit by", "hit"),),
    "jump_over": (("being jumped over by", "jump over"),),
}
# Converse phrases "<object> is <phrase> <subject>", a relation of their own in the text.
RELATION_CONVERSE: dict[str, tuple[tuple[str, str], ...]] = {
    "left_of": (("to the right of", "to the right of"),),
    "above": (("below", "below"), ("beneath", "beneath")),
}

HELD_OUT_TRIPLE_SHARE = 0.03
HELD_OUT_ROLE_SHARE = 0.04
