"""The taxonomy file: the shipped default, a user's own file, and clear errors for malformed ones."""
from __future__ import annotations

import textwrap

import pytest

from paperlib import TaxonomyError, load_taxonomy
from paperlib.corpus.taxonomy import parse_taxonomy

THEMES = ["continual-learning", "curriculum-progressive", "distillation", "alignment-feedback", "reasoning-rl",
          "pretraining-adaptation", "parameter-efficient", "reinforcement-learning", "agents-tools",
          "meta-learning", "self-improvement", "efficiency-systems", "editing-unlearning", "optimization-data",
          "dynamics-theory"]
KINDS = ["survey", "method", "benchmark", "toolbox", "empirical-study", "theory", "position"]
DOMAINS = ["language", "vision", "multimodal", "robotics-embodied", "speech-audio", "time-series",
           "graph-molecular", "medical-health", "music", "general"]

USER_TAXONOMY = """\
name: cooking
scoring:
  title_weight: 2
  max_count: 2
facets:
  cuisine:
    select: multi
    threshold: 1
    default: other
    tags:
      baking:
        definition: Breads and cakes.
        rules:
          - {weight: 1, phrases: [bread*, cake*, oven]}
      other:
        definition: Anything else.
  course:
    select: one
    default: main
    tags:
      dessert:
        definition: Sweet things.
        rules:
          - {weight: 2, phrases: [sweet, dessert*], where: title}
      main:
        definition: The main course.
"""


def write(tmp_path, text, name="tax.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_default_taxonomy_has_the_shared_facets_and_tags():
    tax = load_taxonomy()
    assert tax.facet_names == ("theme", "kind", "domain")
    assert list(tax.facet("theme").tag_names) == THEMES
    assert list(tax.facet("kind").tag_names) == KINDS
    assert list(tax.facet("domain").tag_names) == DOMAINS
    assert tax.facet("kind").select == "one" and tax.facet("kind").default == "method"
    assert tax.facet("domain").default == "general"
    assert all(t.definition for f in tax.facets for t in f.tags)
    assert all(t.rules for t in tax.facet("theme").tags)


def test_user_taxonomy_loads_with_its_own_facets(tmp_path):
    tax = load_taxonomy(write(tmp_path, USER_TAXONOMY))
    assert tax.name == "cooking" and tax.facet_names == ("cuisine", "course")
    assert tax.title_weight == 2.0 and tax.max_count == 2
    baking = tax.facet("cuisine").tags[0]
    assert baking.rules[0].phrases == ("bread*", "cake*", "oven")
    assert tax.facet("course").tags[0].rules[0].where == "title"
    with pytest.raises(KeyError, match="no facet 'theme'"):
        tax.facet("theme")


def test_phrases_fold_case_and_hyphens():
    tax = parse_taxonomy(USER_TAXONOMY.replace("[bread*, cake*, oven]", "[Sour-Dough  Bread*]"))
    assert tax.facet("cuisine").tags[0].rules[0].phrases == ("sour dough bread*",)


@pytest.mark.parametrize("bad, line, words", [
    # a rule key misspelled: names the tag and the rule's line
    (USER_TAXONOMY.replace("{weight: 1, phrases:", "{wieght: 1, phrases:"), 14, ["baking", "wieght"]),
    # a phrase with a regex character
    (USER_TAXONOMY.replace("[bread*, cake*, oven]", "[bread+]"), 14, ["baking", "bread+"]),
    # a weight that is not a number
    (USER_TAXONOMY.replace("{weight: 1,", "{weight: heavy,"), 14, ["baking", "weight"]),
    # where must be title/abstract/any
    (USER_TAXONOMY.replace("where: title", "where: body"), 24, ["dessert", "where"]),
    # missing definition
    (USER_TAXONOMY.replace("        definition: Anything else.\n", "        rules: []\n"), 15, ["other", "definition"]),
    # a one-tag facet without a default
    (USER_TAXONOMY.replace("    default: main\n", ""), 17, ["course", "default"]),
    # a default that is not a tag
    (USER_TAXONOMY.replace("default: other", "default: nothing"), 9, ["cuisine", "nothing"]),
    # the same tag twice across facets
    (USER_TAXONOMY.replace("      main:\n", "      baking:\n"), 25, ["baking", "twice"]),
    # a duplicate key in one mapping
    (USER_TAXONOMY.replace("    threshold: 1\n", "    threshold: 1\n    threshold: 2\n"), 9, ["duplicate", "threshold"]),
    # not YAML at all
    (USER_TAXONOMY.replace("facets:\n", "facets: [\n"), 7, ["YAML"]),
])
def test_malformed_taxonomy_names_tag_and_line(tmp_path, bad, line, words):
    path = write(tmp_path, bad)
    with pytest.raises(TaxonomyError) as info:
        load_taxonomy(path)
    err = info.value
    assert err.path == str(path)
    assert err.line == line, str(err)
    for w in words:
        assert w in str(err)


def test_overrides_must_name_a_tag_of_the_same_facet():
    bad = USER_TAXONOMY.replace("        definition: Breads and cakes.\n",
                                "        definition: Breads and cakes.\n        overrides: [dessert]\n")
    with pytest.raises(TaxonomyError, match="overrides 'dessert'"):
        parse_taxonomy(bad, source="x.yaml")


def test_missing_file_is_a_taxonomy_error(tmp_path):
    with pytest.raises(TaxonomyError, match="cannot read"):
        load_taxonomy(tmp_path / "nope.yaml")


def test_reserved_facet_name_is_refused():
    bad = USER_TAXONOMY.replace("  course:\n", "  title:\n")
    with pytest.raises(TaxonomyError, match="reserved"):
        parse_taxonomy(bad)


SCORED = USER_TAXONOMY.replace("""scoring:
  title_weight: 2
  max_count: 2
""", """scoring:
  title_weight: 2
  max_count: 2
  sentence_weights: {claim: 1.5, background: 0.5}
  claim_cues: [we bake, This-Recipe]
  background_cues: [grandma]
""").replace("""    threshold: 1
    default: other""", """    threshold: 1
    mention_factor: 0.5
    anchor: 2
    default: other""").replace("""        definition: Breads and cakes.
""", """        definition: Breads and cakes.
        requires: [[flour], [oven, fire]]
        given: {dessert: 2}
""").replace("""        definition: Sweet things.
""", """        definition: Sweet things.
        title_name: 1.5
""")


def test_scoring_sentences_cues_and_tag_options_load():
    tax = parse_taxonomy(SCORED)
    assert dict(tax.sentence_weights) == {"lead": 1.0, "claim": 1.5, "background": 0.5, "other": 1.0}
    assert tax.claim_cues == ("we bake", "this recipe") and tax.background_cues == ("grandma",)
    cuisine = tax.facet("cuisine")
    assert cuisine.mention_factor == 0.5 and cuisine.anchor == 2.0
    baking = cuisine.tags[0]
    assert baking.requires == (("flour",), ("oven", "fire")) and baking.given == (("dessert", 2.0),)
    assert tax.facet("course").tags[0].title_name == 1.5
    # without these keys a taxonomy scores as before: every sentence counts 1, no cues
    plain = parse_taxonomy(USER_TAXONOMY)
    assert set(dict(plain.sentence_weights).values()) == {1.0} and plain.claim_cues == ()
    assert plain.facet("cuisine").mention_factor == 1.0 and plain.facet("cuisine").anchor == 0.0


@pytest.mark.parametrize("bad, words", [
    (SCORED.replace("{claim: 1.5, background: 0.5}", "{claims: 1.5}"), ["sentence_weights", "claims"]),
    (SCORED.replace("{claim: 1.5, background: 0.5}", "{claim: -1}"), ["sentence_weights.claim", "at least 0"]),
    (SCORED.replace("claim_cues: [we bake, This-Recipe]", "claim_cues: [we bake!]"), ["claim_cues", "we bake!"]),
    (SCORED.replace("given: {dessert: 2}", "given: {baking: 2}"), ["baking", "given"]),
    (SCORED.replace("given: {dessert: 2}", "given: {nothing: 2}"), ["nothing", "given"]),
    (SCORED.replace("requires: [[flour], [oven, fire]]", "requires: [[flour], oven]"), ["requires", "mixes"]),
    (SCORED.replace("    anchor: 2\n", "    anchor: -2\n"), ["anchor"]),
])
def test_malformed_scoring_options_are_named(bad, words):
    with pytest.raises(TaxonomyError) as info:
        parse_taxonomy(bad, source="x.yaml")
    for w in words:
        assert w in str(info.value)
