"""Owen values over the superpixel hierarchy: the tree joins only touching regions and follows the segment
slider, the values add up at any budget, equal the Owen values of their definition when the budget allows,
and the cat is a cat."""

from __future__ import annotations

import itertools
from typing import TypedDict

import numpy as np
import pytest
from skimage.color import rgb2lab
from skimage.graph import rag_mean_color

from explainers.methods.owen import owen_values, superpixel_hierarchy
from explainers.request import explain
from explainers.superpixels import build_game, slic_segments


class GameSize(TypedDict):
    segments: int
    sigma: float
    compactness: float


SMALL: GameSize = {"segments": 8, "sigma": 0.0, "compactness": 10.0}  # a game the definition can be enumerated on


def cluster_members(linkage: np.ndarray, players: int) -> list[set[int]]:
    """The superpixels under every node of the tree: leaves first, then one set per merge."""
    members = [{i} for i in range(players)]
    for first, second, _, count in linkage:
        members.append(members[int(first)] | members[int(second)])
        assert len(members[-1]) == count
    return members


@pytest.fixture(scope="module")
def cat_explanation(efficientnet, chelsea):
    return explain(efficientnet, chelsea, "owen", top_k=3, max_evals=30, params={"segments": 20})


def test_the_hierarchy_only_merges_touching_regions(efficientnet, chelsea) -> None:
    image = efficientnet.prepare(chelsea)
    segments = slic_segments(image, 40)
    players = int(segments.max()) + 1
    linkage = superpixel_hierarchy(image, segments)
    assert linkage.shape == (players - 1, 4) and (linkage[:, 2] >= 0).all()
    # skimage's region adjacency graph, built independently, says which superpixels touch.
    touching = rag_mean_color(rgb2lab(image), segments, connectivity=1)
    members = cluster_members(linkage, players)
    for step, (first, second, _, _) in enumerate(linkage):
        left, right = members[int(first)], members[int(second)]
        assert not left & right
        assert any(touching.has_edge(a, b) for a in left for b in right), f"merge {step} joins apart regions"
    assert members[-1] == set(range(players))
    # Every node is used exactly once as a child: a binary tree.
    assert sorted(linkage[:, :2].ravel().astype(int).tolist()) == list(range(2 * players - 2))


def test_the_segment_slider_shapes_the_hierarchy(digits_model, digit_seven) -> None:
    few, many = (
        explain(digits_model, digit_seven, "owen", top_k=1, max_evals=60, params={**SMALL, "segments": segments})
        for segments in (6, 20)
    )
    assert len(few.extras["hierarchy"]) == few.params["segments_found"] - 1
    assert len(many.extras["hierarchy"]) == many.params["segments_found"] - 1
    assert many.params["segments_found"] >= few.params["segments_found"] + 8


def test_the_values_add_up_for_every_class_at_any_budget(digits_model, digit_seven) -> None:
    for budget in (10, 60):
        e = explain(digits_model, digit_seven, "owen", top_k=3, max_evals=budget, params={"segments": 20})
        assert e.class_names[0] == "7" and e.n_evals <= budget
        gap = np.abs(e.probs[e.classes] - e.base_values).max()
        assert gap > 0.1 and e.additivity_error <= 1e-5 * gap
        # Every class comes from the same evaluations, so all ten add up too.
        every = e.for_classes(np.arange(10), digits_model.class_names)
        assert every.additivity_error <= 1e-5


def test_a_large_budget_gives_the_owen_values_of_their_definition(digits_model, digit_seven) -> None:
    image = digits_model.prepare(digit_seven)
    game = build_game(digits_model, image, **SMALL, fill="auto", fill_constant=0.0, total=600, progress=None)
    players = game.players
    assert 5 <= players <= 8
    linkage = superpixel_hierarchy(image, game.segments)
    computed = owen_values(game, linkage, max_evals=600, seed=0)
    # Owen's definition: the average marginal contribution over the orders in which every union of the
    # hierarchy arrives in one block (2^(S−1) of the S! orders for a binary tree).
    orders = np.array(list(itertools.permutations(range(players))))
    position = np.argsort(orders, axis=1)
    allowed = np.ones(len(orders), dtype=bool)
    for union in cluster_members(linkage, players)[players:]:
        spots = position[:, sorted(union)]
        allowed &= spots.max(axis=1) - spots.min(axis=1) + 1 == len(union)
    orders = orders[allowed]
    assert len(orders) == 2 ** (players - 1)
    prefixes = np.zeros((len(orders), players + 1, players), dtype=bool)
    for step in range(players):
        prefixes[:, step + 1] = prefixes[:, step]
        prefixes[np.arange(len(orders)), step + 1, orders[:, step]] = True
    outputs = game(prefixes.reshape(-1, players)).reshape(len(orders), players + 1, -1)
    marginal = np.diff(outputs, axis=1)  # orders × steps × classes
    definition = np.zeros_like(computed)
    for step in range(players):
        np.add.at(definition, orders[:, step], marginal[:, step])
    definition /= len(orders)
    np.testing.assert_allclose(computed, definition, atol=1e-6)
    assert np.abs(definition).max() > 0.05  # a game with something to explain


def test_the_cat_is_a_cat_and_its_face_carries_the_evidence(cat_explanation) -> None:
    e = cat_explanation
    assert e.class_names[0] == "Egyptian cat" and e.classes[0] in range(281, 286)  # ImageNet's cats
    assert e.n_evals <= 30 and e.additivity_error <= 1e-5
    eyes = np.zeros(e.segments.shape, dtype=bool)
    eyes[40:140, 40:190] = True
    wall = np.zeros(e.segments.shape, dtype=bool)
    wall[:130, 185:] = True  # the only background: the wall behind the cat's head, upper right
    positive = np.clip(e.values[0], 0, None)
    assert positive[eyes].mean() > 1.3 * positive[~eyes].mean()
    strongest = np.argsort(-e.segment_values[0])[:3]
    centres = [np.argwhere(e.segments == segment).mean(axis=0).astype(int) for segment in strongest]
    assert eyes[tuple(centres[0])] and not any(wall[tuple(centre)] for centre in centres)
