#!/usr/bin/env python
"""Write entprobe's bundled sample prompt sets (``sample:t2i``, ``sample:mmbench``).

Everything here was written for entprobe: no benchmark prompt, question or image is
copied. The files follow the public formats of T2I-CoReBench (one JSON object per
dimension, keyed by prompt ID) and MMBench (a VLMEvalKit TSV with base64 PNGs), so
the real loaders read them. Images are drawn with Pillow from shapes, counts,
colours and a built-in 5x7 bitmap font, so the output does not depend on the
fonts installed.

The output is deterministic: running the script twice gives identical files (for a
given Pillow / zlib build). The package reads only the written files, never this
script.

Usage:
    python scripts/make_sample_sets.py                  # write into the package
    python scripts/make_sample_sets.py --out DIR        # write elsewhere
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import math
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "entprobe" / "datasets" / "samples"

# ------------------------------------------------------------------ T2I prompts
# (dimension, prompt, [(checklist question, tags)], remark); three per dimension,
# from one short line to about 1,500 characters.

_SUB_CLASS = {
    "C-MI": "Multi-Instance",
    "C-MA": "Multi-Attribute",
    "C-MR": "Multi-Relation",
    "C-TR": "Text Rendering",
    "R-LR": "Logical Reasoning",
    "R-BR": "Behavioral Reasoning",
    "R-HR": "Hypothetical Reasoning",
    "R-PR": "Procedural Reasoning",
    "R-GR": "Generalization Reasoning",
    "R-AR": "Analogical Reasoning",
    "R-CR": "Commonsense Reasoning",
    "R-RR": "Reconstructive Reasoning",
}

T2I_PROMPTS: list[tuple[str, str, list[tuple[str, list[str]]], str]] = [
    # ---- C-MI
    (
        "C-MI",
        "Three red apples, two yellow bananas and one green pear in a shallow wooden bowl "
        "on a kitchen table.",
        [
            ("Are there exactly three red apples?", ["count", "object"]),
            ("Are there exactly two yellow bananas?", ["count", "object"]),
            ("Is there exactly one green pear?", ["count", "object"]),
        ],
        "short",
    ),
    (
        "C-MI",
        "A small harbour at dawn seen from the end of a stone pier. Five fishing boats are "
        "moored side by side, each with a differently coloured hull. A lighthouse stands on "
        "the rocky point to the left, four seagulls circle above the masts, two fishermen "
        "carry a crate of fish between them, a stack of orange buoys sits beside a rusty "
        "anchor, and a small brown dog sleeps on a coil of rope.",
        [
            ("Are there exactly five fishing boats?", ["count"]),
            ("Are there exactly four seagulls?", ["count"]),
            ("Is there a dog sleeping on a coil of rope?", ["object", "relation"]),
        ],
        "middle",
    ),
    (
        "C-MI",
        "An elementary school classroom during an art lesson, photographed from the back "
        "corner of the room at child height. Six wooden desks stand in two rows of three, and "
        "at each desk sits one child, so there are exactly six children, all seen from behind "
        "or in profile. On the first desk of the front row lies a box of twelve crayons; on "
        "the second, a jar of water with two paintbrushes in it; on the third, a sheet of "
        "paper with a half-finished drawing of a house. A teacher in a green cardigan stands "
        "at the whiteboard holding a paper star. Along the left wall there is a low shelf with "
        "four potted plants, one of them a small cactus, and above the shelf hang three "
        "framed paintings made by pupils. A globe sits on the teacher's desk next to a stack "
        "of five exercise books and a red apple. Eight coats hang on hooks by the door, and "
        "two backpacks lie on the floor beneath them. Through the single window on the right "
        "wall, a yellow school bus and one tree are visible outside. A clock above the "
        "whiteboard shows ten past eleven.",
        [
            ("Are there exactly six children?", ["count"]),
            ("Are there exactly four potted plants on the shelf?", ["count"]),
            ("Are there exactly eight coats on the hooks?", ["count"]),
            ("Does the clock show ten past eleven?", ["attribute"]),
        ],
        "long",
    ),
    # ---- C-MA
    (
        "C-MA",
        "A tall frosted-blue glass vase holding a single wilted sunflower with drooping, brown-edged petals.",
        [
            ("Is the vase frosted blue glass?", ["attribute"]),
            ("Is the sunflower wilted with brown-edged petals?", ["attribute"]),
        ],
        "short",
    ),
    (
        "C-MA",
        "A vintage bicycle leaning against a whitewashed wall. The frame is mint green with "
        "chipped paint along the top tube, the saddle is cracked brown leather with two copper "
        "rivets, and the wicker basket on the handlebars is woven in a dark and a light tone "
        "and holds a folded red-and-white checked cloth. The front tyre is flat, the back tyre "
        "is new and glossy black, and a small brass bell is fixed to the right side of the "
        "handlebar.",
        [
            ("Is the frame mint green with chipped paint?", ["attribute"]),
            ("Is the front tyre flat while the back tyre looks new?", ["attribute"]),
            (
                "Is the bell brass and on the right side of the handlebar?",
                ["attribute", "relation"],
            ),
        ],
        "middle",
    ),
    (
        "C-MA",
        "A full-length portrait of a street performer standing on an old cobblestone square "
        "in late afternoon light. She is tall and thin, with short silver hair cut unevenly "
        "above one ear and a thin streak of teal over her forehead. Her face is painted white, "
        "with a single black teardrop under the left eye only and lips painted in a narrow "
        "dark-plum line. She wears a double-breasted burgundy velvet coat that reaches her "
        "knees; the coat has eight round brass buttons, the third from the top missing, and "
        "its right sleeve is patched at the elbow with a square of faded denim. Under the "
        "coat she wears a shirt with thin horizontal cream and navy stripes. Her trousers "
        "are loose mustard-yellow corduroy, rolled up unevenly so that the left leg ends "
        "higher than the right. On her feet are scuffed white canvas shoes with mismatched "
        "laces, one red and one green. She holds a small battered accordion with "
        "mother-of-pearl keys and cracked blue bellows. A wide-brimmed black felt hat lies "
        "upside down on the ground in front of her, holding a few coins.",
        [
            ("Is there a teal streak in her silver hair?", ["attribute"]),
            ("Is there a single black teardrop under the left eye only?", ["attribute"]),
            ("Is one brass button missing from the coat?", ["attribute", "count"]),
            ("Are the shoelaces one red and one green?", ["attribute"]),
        ],
        "long",
    ),
    # ---- C-MR
    (
        "C-MR",
        "A cat asleep on a closed laptop, which rests on a stack of three books beside a steaming mug.",
        [
            ("Is the cat on top of the laptop?", ["relation"]),
            ("Is the laptop on a stack of three books?", ["relation", "count"]),
        ],
        "short",
    ),
    (
        "C-MR",
        "A fruit stall at a morning market. The seller stands behind the counter, handing a "
        "paper bag to a customer in front of it. A scale sits to the left of the cash box, and "
        "a chalk price board hangs from the awning above the seller's head. Under the counter "
        "a crate of watermelons rests against a crate of lemons, and a sleeping dog lies "
        "between the customer's feet and the crate of lemons.",
        [
            ("Is the seller handing a bag to the customer?", ["relation"]),
            ("Is the scale to the left of the cash box?", ["relation"]),
            ("Is the dog between the customer and the lemons?", ["relation"]),
        ],
        "middle",
    ),
    (
        "C-MR",
        "A cosy living room seen from the doorway. A long grey sofa stands against the far "
        "wall, directly below a large round mirror. In front of the sofa is a low oak coffee "
        "table, and on the table a chessboard is set up mid-game, with a teapot to the right "
        "of the board and two cups to its left. A floor lamp stands behind the right arm of "
        "the sofa, and its light falls on a basket of knitting on the sofa cushion nearest to "
        "it. To the left of the sofa a tall bookcase reaches the ceiling; a ladder leans "
        "against the bookcase, and a ginger cat sits on the second rung of the ladder looking "
        "down at the chessboard. A rug with a diamond pattern lies under the coffee table but "
        "does not reach the sofa. In the foreground an armchair faces the sofa across the "
        "table, its back to the viewer; a folded newspaper lies on its seat and a pair of "
        "slippers sits on the floor in front of it, pointing towards the table. A potted fern "
        "stands between the armchair and the window on the right.",
        [
            ("Is the mirror directly above the sofa?", ["relation"]),
            ("Is the teapot to the right of the chessboard?", ["relation"]),
            ("Is the cat on the ladder, looking at the chessboard?", ["relation"]),
            ("Does the rug stop short of the sofa?", ["relation"]),
        ],
        "long",
    ),
    # ---- C-TR
    (
        "C-TR",
        'A chalkboard sign outside a cafe that reads "FRESH BREAD FROM 7 AM" in white capital letters.',
        [('Does the sign read "FRESH BREAD FROM 7 AM"?', ["text"])],
        "short",
    ),
    (
        "C-TR",
        'A concert poster pasted on a brick wall. At the top, in large bold red letters: "THE '
        'LATE TRAINS". Below it, in smaller white script: "one night only". In the middle, a '
        "drawing of a steam locomotive. At the bottom, in black block letters on a yellow "
        'band: "SATURDAY 14 JUNE - DOORS 8PM - OLD DEPOT HALL". A torn corner at the lower '
        "right shows an older poster underneath.",
        [
            ('Is "THE LATE TRAINS" written in red at the top?', ["text", "attribute"]),
            ('Is "one night only" written below it?', ["text"]),
            ("Is the date line on a yellow band at the bottom?", ["text", "relation"]),
        ],
        "middle",
    ),
    (
        "C-TR",
        "A hand-painted menu board hanging behind the counter of a small noodle shop, "
        "photographed straight on so that every line is legible. The board is dark green "
        "with a thin gold border. At the top, centred, in large cream letters, is the name "
        '"LANTERN NOODLE BAR". Directly below, in smaller italic letters: "Est. 1987 - cash '
        'and cards". The board then lists six dishes in two columns, each dish name in cream '
        'capitals followed by its price in orange. Left column: "SESAME COLD NOODLES 6.50", '
        '"MUSHROOM BROTH RAMEN 9.00", "CHILLI OIL DUMPLINGS (8) 7.25". Right column: "BEEF '
        'NOODLE SOUP 10.50", "GARLIC GREENS 4.00", "EGG FRIED RICE 5.75". Under the columns '
        'runs a dotted line, and beneath it a single line in smaller white letters: "Add a '
        'soft egg to any bowl +1.20". In the lower left corner a small red stamp-like circle '
        'holds the word "SPICY" and an arrow pointing to the chilli oil dumplings. In the '
        "lower right corner, in handwriting that looks added later in white chalk, are the "
        'words "Sold out: garlic greens", with the dish name underlined twice. At the very '
        'bottom, centred, in the smallest letters on the board: "Open daily 11:30-22:00, '
        'closed Tuesdays". A string of paper lanterns hangs across the top edge of the '
        "board, partly covering the gold border but none of the text. To the right of the "
        'board a small white card is pinned to the wall, reading "No substitutions at '
        'weekends" in black marker, and below the card a brass hook holds a bunch of paper '
        "order slips.",
        [
            ('Is the shop name "LANTERN NOODLE BAR" at the top?', ["text"]),
            ("Are there exactly six dishes in two columns?", ["text", "count"]),
            ('Does the red circle say "SPICY"?', ["text"]),
            (
                'Is "Sold out: garlic greens" written in chalk at the lower right?',
                ["text", "relation"],
            ),
        ],
        "long",
    ),
    # ---- R-LR
    (
        "R-LR",
        "The next shape in the sequence circle, square, triangle, circle, square, drawn large "
        "in the centre of a white page.",
        [("Is a single triangle drawn in the centre of the page?", ["reasoning", "object"])],
        "short",
    ),
    (
        "R-LR",
        "Four houses stand in a row on a street. The blue house is immediately to the left of "
        "the green house. The red house is at one end of the row. The yellow house is not next "
        "to the red house. The green house is not at either end. Show the row of houses from "
        "left to right in the only order that satisfies all of these conditions, with the red "
        "house on the left.",
        [
            (
                "Is the order from left to right red, blue, green, yellow?",
                ["reasoning", "relation"],
            ),
            ("Are there exactly four houses?", ["count"]),
        ],
        "middle",
    ),
    (
        "R-LR",
        "A pantry shelf holds exactly five glass jars in a single row, and each jar contains a "
        "different ingredient: rice, lentils, sugar, coffee beans and dried pasta. Every jar "
        "has a lid of a different colour: red, orange, yellow, green or blue. Use the "
        "following facts to work out the arrangement, then draw the shelf from the front with "
        "the jars in the correct order from left to right, each jar's contents visible through "
        "the glass and its lid in the correct colour. The sugar is in the middle jar. The "
        "coffee beans are in the jar at the far right. The jar with the green lid is "
        "immediately to the left of the sugar. The rice is in the jar at the far left, and its "
        "lid is neither red nor blue. The lentils are not next to the coffee beans. The jar "
        "with the blue lid holds the coffee beans. The red lid is on the jar immediately to "
        "the right of the sugar. The yellow lid is not on the rice.",
        [
            ("Is the order rice, lentils, sugar, pasta, coffee beans?", ["reasoning"]),
            (
                "Are the lids orange, green, yellow, red, blue from left to right?",
                ["reasoning", "attribute"],
            ),
        ],
        "long",
    ),
    # ---- R-BR
    (
        "R-BR",
        "A dog at the window at the moment it hears its owner's car pull into the driveway.",
        [("Does the dog look excited, e.g. wagging or jumping at the window?", ["reasoning"])],
        "short",
    ),
    (
        "R-BR",
        "A bus stop on a busy street at the exact moment a sudden heavy rain begins. Show how "
        "each person reacts: an office worker holding a newspaper, a mother with a toddler and "
        "a pushchair, a teenager wearing headphones, an elderly man with a walking stick, and a "
        "delivery cyclist who has just arrived. The shelter is small and fits only three "
        "people.",
        [
            ("Is the newspaper being used as cover from the rain?", ["reasoning"]),
            ("Are at most three people under the shelter?", ["count", "reasoning"]),
        ],
        "middle",
    ),
    (
        "R-BR",
        "A school playground in the last second of the morning break, just as a teacher at the "
        "door raises a hand bell and rings it. Show what each child does in that moment, "
        "consistent with what each was doing a second earlier. Two girls had been playing "
        "hopscotch, and one has just thrown her stone onto the last square. Four boys had been "
        "in the middle of a football game, and the ball is rolling towards an empty goal. A "
        "small boy had been sitting alone on a bench eating an apple. Three children had been "
        "queueing for the slide, and one is halfway up its ladder. A girl had spent the whole "
        "break coaxing a pigeon to eat crumbs from her hand, and the pigeon is finally "
        "approaching. The teacher on duty near the fence had been watching the football with a "
        "whistle in hand. Depict the playground so that each child's reaction shows how eager "
        "or reluctant they are to go back inside.",
        [
            ("Is the teacher at the door ringing a hand bell?", ["object"]),
            ("Do the footballers look reluctant to stop?", ["reasoning"]),
            ("Is the girl with the pigeon staying still rather than running in?", ["reasoning"]),
        ],
        "long",
    ),
    # ---- R-HR
    (
        "R-HR",
        "A city street on a day when gravity is only half as strong as usual.",
        [("Are people or objects shown moving in long, floating arcs?", ["reasoning"])],
        "short",
    ),
    (
        "R-HR",
        "Imagine a world in which trees grow downward from the clouds instead of up from the "
        "ground, with their roots in the sky and their crowns hanging just above the rooftops. "
        "Show a village square in this world in autumn, including how the falling leaves, the "
        "birds' nests and the villagers' daily life would look.",
        [
            ("Do the trees hang from the clouds with crowns above the roofs?", ["reasoning"]),
            ("Are autumn leaves falling onto the square?", ["reasoning", "attribute"]),
        ],
        "middle",
    ),
    (
        "R-HR",
        "Suppose that ice were denser than liquid water, so that whenever water froze the ice "
        "sank instead of floating. Show a northern lake in late winter in such a world, as a "
        "cross-section that reveals both the surface and the lake bed. Think through the "
        "consequences before drawing: ice that forms at the surface each night would sink, so "
        "the lake would freeze from the bottom upwards, layer by layer, over the winter. Fish "
        "and plants that in our world survive under a floating lid of ice would have nowhere "
        "to shelter. The ice at the bottom would be thick and old, while the top layer of "
        "water is open and steaming in the cold air. Include a wooden jetty whose posts are "
        "frozen into the ice at the bottom, a fisherman on the jetty who has nothing to fish "
        "through, a family of ducks paddling on the open water, and a thermometer on the jetty "
        "showing twenty degrees below zero. Label nothing; the scene itself should make the "
        "hypothetical physics clear.",
        [
            ("Is the ice at the bottom of the lake rather than on top?", ["reasoning"]),
            ("Is the surface water open, with ducks on it?", ["reasoning", "object"]),
            ("Does the thermometer show about minus twenty degrees?", ["attribute"]),
        ],
        "long",
    ),
    # ---- R-PR
    (
        "R-PR",
        "A square sheet of paper after it was folded in half twice, had the folded corner at "
        "the centre of the sheet snipped off, and was opened flat again.",
        [("Is there a single hole in the middle of the sheet?", ["reasoning"])],
        "short",
    ),
    (
        "R-PR",
        "Start with an empty glass on a table. Pour in orange juice until the glass is half "
        "full. Drop in three ice cubes. Add a slice of lemon so that it floats. Drink a third of "
        "the liquid through a striped straw, then leave the straw in the glass. Show the glass "
        "at the end of these steps.",
        [
            ("Is the glass about one third full?", ["reasoning"]),
            ("Are there ice cubes, a lemon slice and a striped straw?", ["object"]),
        ],
        "middle",
    ),
    (
        "R-PR",
        "Show the state of a desk after the following steps, carried out in order. 1. A plain "
        "white mug, a closed laptop, a notebook and a pencil lie on an empty desk. 2. The "
        "laptop is opened and turned on; its screen shows a blue background. 3. The notebook "
        "is opened to a blank page and placed to the right of the laptop. 4. Three short lines "
        "are written on the page, and the pencil is put down diagonally on top of the page. "
        "5. Coffee is poured into the mug, filling it to just below the rim. 6. The mug is "
        "knocked over towards the notebook; the coffee spreads across the lower half of the "
        "open page before the mug is set upright again, now empty. 7. A paper towel is pressed "
        "on the wet part of the page and left there, covering the spill but not the three "
        "lines of writing. 8. The laptop lid is half closed so that the screen is no longer "
        "visible. Render the desk from above, showing only the final state, with every object "
        "where the last step left it.",
        [
            ("Is the mug upright and empty?", ["reasoning"]),
            (
                "Is a paper towel on the lower half of the page, with three lines still visible?",
                ["reasoning", "relation"],
            ),
            ("Is the laptop half closed with the screen hidden?", ["reasoning"]),
        ],
        "long",
    ),
    # ---- R-GR
    (
        "R-GR",
        "In this town every house has exactly as many windows as people living in it. Show the "
        "home of a family of five.",
        [("Does the house have exactly five windows?", ["reasoning", "count"])],
        "short",
    ),
    (
        "R-GR",
        "A museum explains a rule by example: a tricycle is displayed next to three apples, a "
        "bicycle next to two apples, and a unicycle next to one apple. Following the same rule, "
        "show the display case for a four-wheeled wagon.",
        [("Is the wagon displayed next to exactly four apples?", ["reasoning", "count"])],
        "middle",
    ),
    (
        "R-GR",
        "On a certain island every street sign follows the same hidden rule. Here are signs "
        "seen around the island: a street with two bakeries has a blue circle with two white "
        "dots; a street with three bakeries has a blue circle with three white dots; a street "
        "with one school has a green triangle with one white dot; a street with two schools has "
        "a green triangle with two white dots; a street with one hospital has a red square with "
        "one white dot. Every sign shows only one kind of building, and each sign is fixed to a "
        "post at the corner of its street. Work out the rule that links the shape, colour and "
        "dots to what is on the street, then show a street corner on the island where the "
        "street has three hospitals, with its sign on a post and the three hospitals visible "
        "along the street behind it.",
        [
            ("Is the sign a red square?", ["reasoning", "attribute"]),
            ("Does the sign have exactly three white dots?", ["reasoning", "count"]),
            ("Are three hospitals visible along the street?", ["count"]),
        ],
        "long",
    ),
    # ---- R-AR
    (
        "R-AR",
        "Bird is to nest as bee is to what? Show the answer in its natural setting.",
        [("Is a beehive or honeycomb shown?", ["reasoning"])],
        "short",
    ),
    (
        "R-AR",
        "A caterpillar is to a butterfly as a tadpole is to something else. Draw the edge of a "
        "pond with a lily pad, and on the lily pad place the adult form that completes the "
        "analogy, with a few tadpoles still swimming in the water below it.",
        [
            ("Is a frog sitting on the lily pad?", ["reasoning"]),
            ("Are tadpoles visible in the water?", ["object"]),
        ],
        "middle",
    ),
    (
        "R-AR",
        "Complete two analogies and show both answers together in one picture. First: a "
        "lighthouse guides ships safely into harbour in the dark, in the same way that "
        "something guides aeroplanes safely onto a runway at night; show that thing along the "
        "edges of a runway. Second: a library is to books as a garage is to cars; show a "
        "garage with its door open. Combine both answers into one scene at dusk: a country "
        "airfield with the runway's guiding lights glowing along both sides of the strip, a "
        "small propeller aircraft approaching to land with its own landing light on, and, "
        "beside the runway, the building from the second analogy with its door open and a red "
        "car parked inside. The sky should be deep blue with the last orange light on the "
        "horizon. Keep the lighthouse, the ships and the library out of the picture: they "
        "belong only to the questions, not to the answers.",
        [
            ("Are runway lights shown along both sides of the runway?", ["reasoning"]),
            ("Is there an open garage with a red car inside?", ["reasoning", "object"]),
            ("Are the lighthouse and the library absent?", ["reasoning"]),
        ],
        "long",
    ),
    # ---- R-CR
    (
        "R-CR",
        "A glass of iced lemonade that has been left in the midday sun for an hour.",
        [
            ("Have the ice cubes melted?", ["reasoning"]),
            ("Is there condensation or a wet ring around the glass?", ["reasoning"]),
        ],
        "short",
    ),
    (
        "R-CR",
        "A family kitchen on the morning after a child's birthday party. Show it the way it "
        "would realistically look: what has happened to the balloons, the cake, the candles, "
        "the wrapping paper and the glasses on the table, and what the family dog is doing.",
        [
            ("Are some balloons shrunken or on the floor?", ["reasoning"]),
            ("Is the cake partly eaten with used candles?", ["reasoning"]),
        ],
        "middle",
    ),
    (
        "R-CR",
        "A campsite by a river at sunrise, the morning after a night of heavy rain and strong "
        "wind. There are two tents: one was pitched properly, with all its pegs in and its "
        "flysheet tight; the other was pitched in a hurry in a dip in the ground, with only "
        "two pegs used. Show the realistic state of everything: the two tents, the campfire "
        "ring that was used the evening before, a pair of boots that was left outside the "
        "hurried tent, a cooking pot that was left on a flat rock with its lid off, and a "
        "clothesline strung between two trees with a towel and a T-shirt on it. A camper is "
        "crawling out of each tent. Include the river, which was calm and clear the previous "
        "evening. Every detail should follow from what a night of rain and wind does to such "
        "things, without anything being explained in words.",
        [
            ("Is the hurried tent collapsed or standing in water?", ["reasoning"]),
            ("Is the cooking pot full of rainwater?", ["reasoning"]),
            ("Is the river high and muddy?", ["reasoning"]),
        ],
        "long",
    ),
    # ---- R-RR
    (
        "R-RR",
        "A kitchen floor a few seconds after someone dropped a full carton of milk.",
        [("Is there a pool of spilled milk around a burst carton?", ["reasoning"])],
        "short",
    ),
    (
        "R-RR",
        "These clues were found in a garden after fresh snow: small bird tracks that end at "
        "the feeder, cat tracks coming from the fence that stop under the feeder, a patch of "
        "churned snow with two grey feathers, and bird tracks leading away from the churned "
        "patch towards the hedge. Show the moment ten minutes earlier that best explains all "
        "of these clues.",
        [
            ("Is a cat shown leaping towards a bird at the feeder?", ["reasoning"]),
            ("Is it snowing or has fresh snow covered the garden?", ["attribute"]),
        ],
        "middle",
    ),
    (
        "R-RR",
        "A detective's notebook lists what was found in a study on a Sunday morning: a window "
        "open by a hand's width, the curtain on that side blown outward; a desk chair turned "
        "to face the window instead of the desk; a cup of tea on the desk, half full and cold; "
        "a single page torn cleanly out of a diary; muddy paw prints on the window sill, "
        "pointing inward, leading across the carpet to a dog basket; an empty dog basket; an "
        "unopened letter on the floor under the desk, with one corner chewed. Reconstruct the "
        "most likely sequence of events of the previous evening and show the single moment, "
        "in the same study, just before the window is opened: include the person sitting at "
        "the desk, what they are looking at, the dog, the cup of tea while it is still hot, "
        "the diary, and the letter.",
        [
            ("Is the window still closed?", ["reasoning"]),
            ("Is the tea steaming?", ["reasoning"]),
            ("Are the diary and the unopened letter both in the scene?", ["object"]),
        ],
        "long",
    ),
]


def t2i_files() -> dict[str, str]:
    """File name -> JSON text, one file per dimension."""
    by_dim: dict[str, dict] = {code: {} for code in _SUB_CLASS}
    for dim, prompt, checklist, remark in T2I_PROMPTS:
        key = f"{dim}-{len(by_dim[dim]) + 1:03d}"
        by_dim[dim][key] = {
            "Main Class": "Composition" if dim.startswith("C") else "Reasoning",
            "Sub Class": _SUB_CLASS[dim],
            "Prompt": prompt,
            "Checklist": [{"question": q, "tags": tags} for q, tags in checklist],
            "Remark": f"entprobe sample, {remark} prompt",
        }
    return {
        f"{dim}.json": json.dumps(data, indent=2, ensure_ascii=False) + "\n" for dim, data in by_dim.items()
    }


# ------------------------------------------------------------------ drawing

_GLYPHS = {  # 5x7 bitmap font, only the characters the samples use
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "B": ["11110", "10001", "10001", "11110", "10001", "10001", "11110"],
    "C": ["01111", "10000", "10000", "10000", "10000", "10000", "01111"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "P": ["11110", "10001", "10001", "11110", "10000", "10000", "10000"],
    "S": ["01111", "10000", "10000", "01110", "00001", "00001", "11110"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "?": ["01110", "10001", "00001", "00010", "00100", "00000", "00100"],
}


def _text(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, scale: int, fill) -> None:
    x0, y0 = xy
    for k, ch in enumerate(text):
        for r, bits in enumerate(_GLYPHS[ch]):
            for c, bit in enumerate(bits):
                if bit == "1":
                    x, y = x0 + (k * 6 + c) * scale, y0 + r * scale
                    draw.rectangle([x, y, x + scale - 1, y + scale - 1], fill=fill)


def _canvas(size: int = 96, bg="white") -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGB", (size, size), bg)
    return im, ImageDraw.Draw(im)


def _sunny_meadow() -> Image.Image:
    im, d = _canvas(96, (135, 200, 240))
    d.rectangle([0, 60, 95, 95], fill=(70, 160, 60))
    d.ellipse([62, 8, 86, 32], fill=(250, 210, 40))
    for x in (10, 30, 50):
        d.ellipse([x, 66, x + 6, 72], fill=(240, 240, 80))
    return im


def _smiling_face() -> Image.Image:
    im, d = _canvas(96)
    d.ellipse([12, 12, 84, 84], fill=(250, 215, 60), outline="black", width=2)
    d.ellipse([32, 34, 40, 44], fill="black")
    d.ellipse([56, 34, 64, 44], fill="black")
    d.arc([28, 40, 68, 70], start=20, end=160, fill="black", width=3)
    return im


def _blurry_shapes() -> Image.Image:
    im, d = _canvas(96)
    d.rectangle([10, 10, 44, 44], fill=(200, 40, 40))
    d.ellipse([50, 40, 88, 78], fill=(40, 80, 200))
    return im.filter(ImageFilter.GaussianBlur(4))


def _checkerboard() -> Image.Image:
    im, d = _canvas(64)
    for i in range(8):
        for j in range(8):
            if (i + j) % 2:
                d.rectangle([i * 8, j * 8, i * 8 + 7, j * 8 + 7], fill="black")
    return im


def _red_circle() -> Image.Image:
    im, d = _canvas(64)
    d.ellipse([14, 14, 50, 50], fill=(220, 30, 30))
    return im


def _stop_sign() -> Image.Image:
    im, d = _canvas(96)
    d.regular_polygon((48, 48, 40), 8, rotation=22.5, fill=(200, 20, 20))
    _text(d, (25, 41), "STOP", 2, "white")
    return im


def _triangle_top_left() -> Image.Image:
    im, d = _canvas(96)
    d.polygon([(20, 10), (8, 34), (32, 34)], fill=(30, 60, 200))
    return im


def _green_star() -> Image.Image:
    im, d = _canvas(96)
    pts = []
    for k in range(10):
        r = 38 if k % 2 == 0 else 16
        a = math.pi / 2 + k * math.pi / 5
        pts.append((round(48 + r * math.cos(a)), round(50 - r * math.sin(a))))
    d.polygon(pts, fill=(40, 160, 60))
    return im


def _square_left_of_circle() -> Image.Image:
    im, d = _canvas(96)
    d.rectangle([8, 34, 36, 62], fill=(30, 60, 200))
    d.ellipse([56, 34, 86, 64], fill=(245, 140, 30))
    return im


def _small_and_large_circles() -> Image.Image:
    im, d = _canvas(96)
    d.ellipse([8, 40, 24, 56], fill=(120, 60, 170))
    d.ellipse([44, 22, 88, 66], fill=(120, 60, 170))
    return im


def _red_and_blue_dots() -> Image.Image:
    im, d = _canvas(96)
    for x, y in [(12, 14), (60, 20), (30, 52), (72, 70)]:
        d.ellipse([x, y, x + 12, y + 12], fill=(210, 30, 30))
    for x, y in [(40, 12), (10, 76)]:
        d.ellipse([x, y, x + 12, y + 12], fill=(30, 60, 210))
    return im


def _triangle_below_circle() -> Image.Image:
    im, d = _canvas(96)
    d.ellipse([34, 8, 62, 36], fill=(230, 180, 20))
    d.polygon([(48, 50), (32, 82), (64, 82)], fill=(30, 150, 90))
    return im


def _hot_thermometer() -> Image.Image:
    im, d = _canvas(96)
    d.rounded_rectangle([40, 8, 56, 76], radius=8, outline="black", width=2, fill="white")
    d.ellipse([34, 66, 62, 92], fill=(220, 30, 30), outline="black", width=2)
    d.rectangle([45, 14, 51, 72], fill=(220, 30, 30))
    d.ellipse([70, 6, 90, 26], fill=(250, 200, 30))
    return im


def _key() -> Image.Image:
    im, d = _canvas(96)
    grey = (150, 150, 160)
    d.ellipse([8, 32, 40, 64], fill=grey)
    d.ellipse([18, 42, 30, 54], fill="white")
    d.rectangle([38, 44, 88, 52], fill=grey)
    for x in (66, 78):
        d.rectangle([x, 52, x + 6, 62], fill=grey)
    return im


def _red_cross() -> Image.Image:
    im, d = _canvas(64)
    d.rectangle([26, 10, 38, 54], fill=(220, 20, 30))
    d.rectangle([10, 26, 54, 38], fill=(220, 20, 30))
    return im


def _ice_and_flame() -> Image.Image:
    im, d = _canvas(96)
    d.rectangle([8, 40, 36, 68], fill=(180, 225, 245), outline=(90, 160, 210), width=2)
    d.polygon([(70, 24), (56, 60), (62, 72), (78, 72), (84, 60)], fill=(245, 120, 20))
    d.polygon([(70, 44), (64, 64), (76, 64)], fill=(250, 220, 60))
    return im


def _ball_on_box() -> Image.Image:
    im, d = _canvas(96)
    d.line([0, 84, 95, 84], fill="black", width=2)
    d.rectangle([28, 50, 68, 83], fill=(170, 110, 50))
    d.ellipse([36, 26, 60, 50], fill=(220, 30, 30))
    return im


def _sun_and_plant() -> Image.Image:
    im, d = _canvas(96, (200, 230, 250))
    d.ellipse([8, 6, 32, 30], fill=(250, 210, 40))
    d.rectangle([0, 80, 95, 95], fill=(120, 80, 40))
    d.line([60, 80, 60, 44], fill=(30, 130, 40), width=3)
    d.ellipse([60, 46, 80, 56], fill=(40, 160, 50))
    d.ellipse([40, 56, 60, 66], fill=(40, 160, 50))
    return im


def _stick(d: ImageDraw.ImageDraw, x: int, top: int, height: int) -> None:
    head = height // 5
    d.ellipse([x - head // 2, top, x + head // 2, top + head], outline="black", width=2)
    neck, hip = top + head, top + height * 3 // 5
    d.line([x, neck, x, hip], fill="black", width=2)
    d.line([x, hip, x - head // 2, top + height], fill="black", width=2)
    d.line([x, hip, x + head // 2, top + height], fill="black", width=2)


def _adult_and_child() -> Image.Image:
    im, d = _canvas(96)
    _stick(d, 32, 14, 72)
    _stick(d, 66, 46, 40)
    d.line([32, 40, 66, 60], fill="black", width=2)  # the joined arms
    return im


def _roped_boxes() -> Image.Image:
    im, d = _canvas(96)
    d.rectangle([6, 50, 32, 76], fill=(170, 110, 50))
    d.rectangle([64, 50, 90, 76], fill=(170, 110, 50))
    d.line([32, 60, 48, 66, 64, 60], fill=(60, 40, 20), width=2, joint="curve")
    return im


def _ball_on_ramp() -> Image.Image:
    im, d = _canvas(96)
    d.polygon([(4, 30), (4, 88), (92, 88)], fill=(160, 160, 160))
    d.ellipse([4, 14, 20, 30], fill=(30, 60, 200))
    return im


def _bar_chart() -> Image.Image:
    im, d = _canvas(96)
    d.line([10, 80, 90, 80], fill="black", width=1)
    for k, (label, height) in enumerate(zip("ABC", (28, 60, 44), strict=True)):
        x = 16 + k * 26
        d.rectangle([x, 80 - height, x + 16, 79], fill=(60, 110, 190))
        _text(d, (x + 3, 84), label, 1, "black")
    return im


def _number_sequence() -> Image.Image:
    im, d = _canvas(128, (245, 245, 235))
    for k, ch in enumerate("246?"):
        x = 6 + k * 30
        d.rectangle([x, 44, x + 26, 84], outline="black", width=2)
        _text(d, (x + 8, 57), ch, 2, "black")
    return im


def _dot_panels() -> Image.Image:
    im, d = _canvas(128)
    for k in range(4):
        x = 4 + k * 31
        d.rectangle([x, 40, x + 28, 88], outline="black", width=2)
        for j in range(k + 1 if k < 3 else 0):
            d.ellipse([x + 9, 44 + j * 11, x + 19, 54 + j * 11], fill="black")
    return im


# ------------------------------------------------------------------ MMBench items

Item = tuple[int, str, str, str, str, list[str], str, Callable[[], Image.Image]]
# (index, l2-category, category, question, hint, options, answer letter, image)
MMBENCH_ITEMS: list[Item] = [
    (
        1,
        "coarse_perception",
        "image_scene",
        "Which scene does the picture show?",
        "",
        ["A sunny meadow", "A street at night", "An underwater reef", "A snowy mountain"],
        "A",
        _sunny_meadow,
    ),
    (
        2,
        "coarse_perception",
        "image_emotion",
        "What mood does the face express?",
        "",
        ["Sad", "Happy", "Angry", "Sleepy"],
        "B",
        _smiling_face,
    ),
    (
        3,
        "coarse_perception",
        "image_quality",
        "How would you describe the sharpness of this image?",
        "Look at the edges of the shapes.",
        ["Sharp and clear", "Blurry"],
        "B",
        _blurry_shapes,
    ),
    (
        4,
        "coarse_perception",
        "image_style",
        "Which best describes the style of the image?",
        "",
        [
            "A regular geometric pattern",
            "A portrait photograph",
            "A watercolour landscape",
            "A handwritten letter",
        ],
        "A",
        _checkerboard,
    ),
    (
        5,
        "finegrained_perception (instance-level)",
        "attribute_recognition",
        "What colour is the circle?",
        "",
        ["Blue", "Green", "Red", "Yellow"],
        "C",
        _red_circle,
    ),
    (
        6,
        "finegrained_perception (instance-level)",
        "ocr",
        "What word is written on the sign?",
        "",
        ["GO", "STOP", "EXIT", "OPEN"],
        "B",
        _stop_sign,
    ),
    (
        7,
        "finegrained_perception (instance-level)",
        "object_localization",
        "Where is the triangle in the image?",
        "",
        ["Top left", "Top right", "Bottom left", "Bottom right"],
        "A",
        _triangle_top_left,
    ),
    (
        8,
        "finegrained_perception (instance-level)",
        "attribute_recognition",
        "What shape is shown in the image?",
        "",
        ["Square", "Star", "Circle", "Heart"],
        "B",
        _green_star,
    ),
    (
        9,
        "finegrained_perception (cross-instance)",
        "spatial_relationship",
        "Where is the blue square relative to the orange circle?",
        "",
        ["To its left", "To its right", "Above it", "Below it"],
        "A",
        _square_left_of_circle,
    ),
    (
        10,
        "finegrained_perception (cross-instance)",
        "attribute_comparison",
        "Which circle is larger?",
        "",
        ["The left circle", "The right circle", "They are the same size"],
        "B",
        _small_and_large_circles,
    ),
    (
        11,
        "finegrained_perception (cross-instance)",
        "attribute_comparison",
        "Are there more red dots or more blue dots?",
        "Count the dots of each colour.",
        ["More red dots", "More blue dots", "The same number"],
        "A",
        _red_and_blue_dots,
    ),
    (
        12,
        "finegrained_perception (cross-instance)",
        "spatial_relationship",
        "What is directly below the circle?",
        "",
        ["A triangle", "A square", "A star", "Nothing"],
        "A",
        _triangle_below_circle,
    ),
    (
        13,
        "attribute_reasoning",
        "physical_property_reasoning",
        "Is the temperature shown by the thermometer high or low?",
        "",
        ["High", "Low"],
        "A",
        _hot_thermometer,
    ),
    (
        14,
        "attribute_reasoning",
        "function_reasoning",
        "What is the object in the picture mainly used for?",
        "",
        ["Opening a lock", "Writing", "Cutting paper", "Telling the time"],
        "A",
        _key,
    ),
    (
        15,
        "attribute_reasoning",
        "identity_reasoning",
        "Which kind of service is this symbol most often used for?",
        "",
        ["Medical help", "Fast food", "Post office", "Car repair"],
        "A",
        _red_cross,
    ),
    (
        16,
        "attribute_reasoning",
        "physical_property_reasoning",
        "Which of the two objects is colder?",
        "The left object is pale blue and translucent.",
        ["The left object", "The right object"],
        "A",
        _ice_and_flame,
    ),
    (
        17,
        "relation_reasoning",
        "physical_relation",
        "What is the ball resting on?",
        "",
        ["A box", "The floor", "A table", "Nothing, it is floating"],
        "A",
        _ball_on_box,
    ),
    (
        18,
        "relation_reasoning",
        "nature_relation",
        "What does the plant get from the object in the sky?",
        "",
        ["Light", "Rain", "Soil", "Wind"],
        "A",
        _sun_and_plant,
    ),
    (
        19,
        "relation_reasoning",
        "social_relation",
        "What is the most likely relationship between the two figures?",
        "The figures are holding hands.",
        ["An adult and a child", "Two strangers", "Two opponents"],
        "A",
        _adult_and_child,
    ),
    (
        20,
        "relation_reasoning",
        "physical_relation",
        "How are the two boxes connected?",
        "",
        ["By a rope", "They are stacked", "They are not connected"],
        "A",
        _roped_boxes,
    ),
    (
        21,
        "logic_reasoning",
        "future_prediction",
        "What will most likely happen to the ball next?",
        "",
        ["It rolls down the slope", "It rolls up the slope", "It floats away"],
        "A",
        _ball_on_ramp,
    ),
    (
        22,
        "logic_reasoning",
        "structuralized_imagetext_understanding",
        "Which bar in the chart is the tallest?",
        "",
        ["Bar A", "Bar B", "Bar C"],
        "B",
        _bar_chart,
    ),
    (
        23,
        "logic_reasoning",
        "structuralized_imagetext_understanding",
        "Which number should replace the question mark?",
        "",
        ["7", "8", "10", "12"],
        "B",
        _number_sequence,
    ),
    (
        24,
        "logic_reasoning",
        "future_prediction",
        "How many dots should the fourth panel have?",
        "The panels follow a pattern.",
        ["3", "4", "5", "6"],
        "B",
        _dot_panels,
    ),
]
# a second question about item 9's picture: its image cell refers to index 9
EXTRA_REFERENCING = [
    (
        25,
        "finegrained_perception (instance-level)",
        "attribute_recognition",
        "What colour is the square?",
        "",
        ["Blue", "Orange", "Green", "Purple"],
        "A",
        9,
    ),
]
# circular-evaluation copies (options rotated, image referring to the original)
CIRCULAR = (2, 6, 10, 14, 19, 22)

COLUMNS = [
    "index",
    "question",
    "hint",
    "A",
    "B",
    "C",
    "D",
    "answer",
    "category",
    "image",
    "source",
    "l2-category",
    "comment",
    "split",
]


def _png_base64(im: Image.Image) -> str:
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=False, compress_level=9)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _row(index, l2, cat, question, hint, options, answer, image) -> list[str]:
    opts = options + [""] * (4 - len(options))
    return [str(index), question, hint, *opts, answer, cat, image, "entprobe-sample", l2, "", "dev"]


def mmbench_rows() -> list[list[str]]:
    """The TSV rows (header first)."""
    rows = [COLUMNS]
    for index, l2, cat, question, hint, options, answer, draw in MMBENCH_ITEMS:
        rows.append(_row(index, l2, cat, question, hint, options, answer, _png_base64(draw())))
    for index, l2, cat, question, hint, options, answer, target in EXTRA_REFERENCING:
        rows.append(_row(index, l2, cat, question, hint, options, answer, str(target)))
    for index, l2, cat, question, hint, options, answer, _ in MMBENCH_ITEMS:
        if index in CIRCULAR:
            shift = 1
            rotated = options[shift:] + options[:shift]
            new_answer = "ABCD"[rotated.index(options["ABCD".index(answer)])]
            rows.append(_row(1_000_000 + index, l2, cat, question, hint, rotated, new_answer, str(index)))
    return rows


def write(out: Path) -> list[Path]:
    """Write both sample sets under ``out``; return the files written."""
    written = []
    t2i_dir = out / "t2i-corebench"
    t2i_dir.mkdir(parents=True, exist_ok=True)
    for name, text in t2i_files().items():
        path = t2i_dir / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    tsv = out / "mmbench-sample.tsv"
    with open(tsv, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(mmbench_rows())
    written.append(tsv)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})"
    )
    args = parser.parse_args()
    for path in write(args.out):
        print(f"wrote {path} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
