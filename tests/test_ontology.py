"""The label ontology: coverage of the SAT-DS and TotalSegmentator names, hierarchy logic, validation, CLI."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from typer.testing import CliRunner

from satds.cli import app
from satds.errors import OntologyError
from satds.ontology import Concept, Ontology, load_ontology, normalise_name
from satds.ontology.model import OntologyFile
from satds.resources import ontology_path

# SAT-DS names that are synonyms of another SAT-DS name's concept (docs/ontology.md, "Merges").
MERGED = {"thyroid gland": "thyroid", "rib cartilage": "costal cartilage"}
C = [f"cervical_vertebra_{i}" for i in range(1, 8)]
T = [f"thoracic_vertebra_{i}" for i in range(1, 13)]
L = [f"lumbar_vertebra_{i}" for i in range(1, 6)]
COUINAUD = [f"liver_segment_{i}" for i in range(1, 9)]
RIBS_LEFT = [f"rib_left_{i}" for i in range(1, 13)]
RIBS_RIGHT = [f"rib_right_{i}" for i in range(1, 13)]


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


@pytest.fixture(scope="module")
def terminology(sat_ds_dir) -> dict:
    return json.loads((sat_ds_dir / "terminology_list.json").read_text())


@pytest.fixture(scope="module")
def facts(sat_ds_dir) -> list[dict]:
    out = []
    for f in sorted(sat_ds_dir.parent.glob("facts-part*.yaml")):  # the shared folder's datasets/, beside sat-ds/
        out.extend(yaml.safe_load(f.read_text()))
    return out


def _strip(name: str) -> str:
    return re.sub(r"^(ct|mri|pet)_", "", name)


# ---------------------------------------------------------------------------------------------- the real file
def test_real_file_is_valid(onto):
    assert onto.validate() == []
    assert onto.path == ontology_path()
    assert onto.version == "1.0.0"
    assert [(e.version, e.date) for e in onto.data.changelog] == [("1.0.0", "2026-11-26")]
    assert len(onto) == 528  # 515 + 13 added for totalsegmentator_mri


def test_every_sat_name_resolves_to_one_concept_with_the_sat_name(onto, terminology):
    prefixed = terminology["all"]
    names = sorted({_strip(n) for n in prefixed})
    assert len(prefixed) == 498 and len(names) == 451
    for n in prefixed:
        assert onto.resolve(n) is onto.resolve(_strip(n))
    got = {n: onto.resolve(n) for n in names}
    assert {n: c.name for n, c in got.items() if c.name != n} == MERGED
    assert len({c.id for c in got.values()}) == 451 - len(MERGED)  # resolve() raises when a name is ambiguous


def test_sat_regions_and_lesions(onto, terminology):
    regions: dict[str, set[str]] = {}
    for region, names in terminology["region_based"].items():
        for n in names:
            regions.setdefault(_strip(n), set()).add(region)
    for n, rs in regions.items():
        # the SAT paper's rule: a class listed in several regions counts as whole body (only the esophagus)
        want = next(iter(rs)) if len(rs) == 1 else "whole body"
        assert onto.resolve(n).region == want, n
    assert onto.resolve("esophagus").region == "whole body"
    abnormal = {_strip(n) for n in terminology["abnormal"]}
    lesions = {_strip(n) for n in terminology["all"] if onto.resolve(n).kind == "lesion"}
    assert lesions - abnormal == {"white matter hyperintensities", "left kidney cyst", "right kidney cyst"}
    assert abnormal <= lesions


def test_every_totalsegmentator_name_resolves(onto, realdata):
    maps = json.loads((realdata / "classmaps.json").read_text())
    assert {k: len(v) for k, v in maps.items()} == {"total": 117, "total_mr": 50, "total_v1": 104}
    for m in maps.values():
        for name in m.values():
            onto.resolve(name)
    expect = {
        "vertebrae_L1": "lumbar_vertebra_1", "vertebrae_C7": "cervical_vertebra_7", "vertebrae_S1": "sacral_vertebra_1",
        "clavicula_left": "clavicle_left", "rib_right_12": "rib_right_12", "kidney_cyst_left": "kidney_cyst_left",
        "atrial_appendage_left": "left_auricle_of_heart", "costal_cartilages": "costal_cartilage",
        "thyroid_gland": "thyroid", "face": "face", "heart_myocardium": "myocardium",
        "heart_atrium_left": "heart_atrium_left", "lung_middle_lobe_right": "lung_middle_lobe_right",
        "lung_left": "lung_left", "vertebrae": "vertebrae", "intervertebral_discs": "intervertebral_discs",
        "iliac_vena_right": "iliac_vena_right", "portal_vein_and_splenic_vein": "portal_vein_and_splenic_vein",
        "hip_left": "hip_left", "urinary_bladder": "urinary_bladder", "small_bowel": "small_bowel",
    }
    assert {n: onto.resolve(n).id for n in expect} == expect


def test_every_dataset_label_name_resolves(onto, facts):
    assert len(facts) == 79
    for e in facts:
        for name in (e.get("labels") or {}).values():
            if "overlap" not in name:  # SegRap2023's SAT-internal overlap values, merged away
                onto.resolve(name)
        for d in e.get("derived") or []:
            onto.resolve(d["name"])
    newer = {"postcava": "inferior_vena_cava", "Rib fracture": "rib_fracture", "trachea and bronchie":
             "trachea_and_bronchie", "mediastinal lymph node": "mediastinal_lymph_node",
             "Adrenocortical carcinoma": "adrenocortical_carcinoma", "lung nodule": "lung_nodule"}
    assert {n: onto.resolve(n).id for n in newer} == newer


def test_every_sat_union_is_a_partition(onto, facts):
    """Each union SAT-DS builds is derivable from its parts, except where SAT-DS's union is not exact."""
    not_derivable = {("MRSpineSeg", "thoracic vertebrae"), ("MRSpineSeg", "intervertebral discs"),
                     ("MRSpineSeg", "vertebrae")}  # unions over a field of view (T9-T12, 9 of 23 discs)
    extra = {("TotalSegmentator_Vertebrae", "vertebrae"): {"sacrum"},  # vertebrae exclude the sacrum
             ("COVID19", "lung"): {"covid_19_infection"}}  # a lesion located in the lung, not a part
    seen_missing, seen_extra, checked = set(), {}, 0
    for e in facts:
        for d in e.get("derived") or []:
            if e["key"] == "VerSe":
                continue  # its facts describe the unions in prose ("...", "all values 1-26"); see the vertebra tests
            parts = {onto.resolve(n).id for n in d["from"]}
            target = onto.resolve(d["name"]).id
            derived = onto.derivable(parts)
            if target not in derived:
                seen_missing.add((e["key"], d["name"]))
                continue
            leaves = onto.leaves_of(target, parts)
            if leaves != parts:
                seen_extra[(e["key"], d["name"])] = parts - leaves
            checked += 1
    assert seen_missing == not_derivable
    assert seen_extra == extra
    assert checked == 157
    covid = {onto.resolve(n).id for n in ["left lung", "right lung", "covid-19 infection"]}
    assert onto.organ_with_lesions("lung", covid) == {"covid_19_infection"}


# ---------------------------------------------------------------------------------------------- names
def test_resolution_is_case_underscore_spacing_and_prefix_insensitive(onto):
    for name in ["left kidney", "LEFT_KIDNEY", "  Left   Kidney ", "kidney_left", "Kidney-Left", "ct_left kidney",
                 "mri_left kidney", "MR left kidney", "pet left kidney"]:
        assert onto.resolve(name).id == "kidney_left", name
    assert onto.resolve("L1").id == "lumbar_vertebra_1"
    assert onto.resolve("t12").id == "thoracic_vertebra_12"
    assert onto.resolve("IVC").id == onto.resolve("postcava").id == "inferior_vena_cava"
    assert onto.resolve("SVC").id == "superior_vena_cava"
    assert onto.resolve("PZ").id == "prostate_peripheral_zone" and onto.resolve("tz").id == "prostate_transition_zone"
    assert onto.resolve("L5-S1").id == "intervertebral_disc_l5_s1"
    assert onto.get("kidney").id == "kidney" and onto.get("kidneys").id == "kidney"
    assert onto.try_resolve("spleen of the moon") is None
    with pytest.raises(OntologyError, match=r"'lumbar vertebra 7' is not a concept name.*did you mean"):
        onto.resolve("lumbar vertebra 7")


def test_ambiguous_name_is_an_error():
    o = _mini(_c("a", "alpha", synonyms=["x"]), _c("b", "beta", synonyms=["X"]))
    assert o.try_resolve("x") is None
    with pytest.raises(OntologyError, match=r"name 'x' is ambiguous: \['a', 'b'\]"):
        o.resolve("x")


# ---------------------------------------------------------------------------------------------- hierarchy
def test_kidney_derivation(onto):
    assert onto.derivable({"kidney_left", "kidney_right"}) == {"kidney": ("kidney_left", "kidney_right")}
    assert onto.derivable({"kidney_left"}) == {}
    assert onto.derivable({"kidney", "kidney_left", "kidney_right"}) == {}  # known concepts are not returned


def test_vertebra_derivations(onto):
    assert onto.derivable(C) == {"cervical_vertebrae": tuple(C)}
    assert onto.derivable(C[:-1]) == {}
    got = onto.derivable(C + T + L)
    assert got == {"cervical_vertebrae": tuple(C), "thoracic_vertebrae": tuple(T), "lumbar_vertebrae": tuple(L),
                   "vertebrae": ("cervical_vertebrae", "thoracic_vertebrae", "lumbar_vertebrae")}
    # variants join the union when annotated, and never block it when not
    got = onto.derivable(C + T + L + ["thoracic_vertebra_13", "lumbar_vertebra_6"])
    assert got["thoracic_vertebrae"] == (*T, "thoracic_vertebra_13")
    assert got["lumbar_vertebrae"] == (*L, "lumbar_vertebra_6")
    assert onto.derivable(["lumbar_vertebra_6", *L[:-1]]) == {}
    assert onto.leaves_of("vertebrae", C + T + L) == set(C + T + L)
    # the sacrum is not a vertebrae part
    assert "sacrum" not in onto.descendants("vertebrae")
    assert onto.ancestors("sacral_vertebra_1") == {"sacrum", "bone"}
    assert onto.ancestors("lumbar_vertebra_1") == {"lumbar_vertebrae", "vertebrae", "bone"}
    assert onto["lumbar_vertebra_6"].variant and onto["thoracic_vertebra_13"].variant
    assert onto["thoracic_vertebra_13"].name == "thoracic vertebrae 13 (t13)"
    assert len(onto.children("intervertebral_discs")) == 23


def test_liver_from_couinaud_segments(onto):
    assert onto.derivable(COUINAUD) == {
        "liver_lobe_left": ("liver_segment_2", "liver_segment_3", "liver_segment_4"),
        "liver_lobe_right": ("liver_segment_5", "liver_segment_6", "liver_segment_7", "liver_segment_8"),
        "liver": ("liver_segment_1", "liver_lobe_left", "liver_lobe_right"),
    }
    assert set(onto.derivable(COUINAUD[1:])) == {"liver_lobe_left", "liver_lobe_right"}  # no caudate lobe, no liver
    assert [onto[s].name for s in COUINAUD] == [
        "caudate lobe", "left lateral superior segment of liver", "left lateral inferior segment of liver",
        "left medial segment of liver", "right anterior inferior segment of liver",
        "right posterior inferior segment of liver", "right posterior superior segment of liver",
        "right anterior superior segment of liver"]
    assert onto.leaves_of("liver", COUINAUD) == set(COUINAUD)


def test_ribs_from_the_24_numbered_ribs(onto):
    got = onto.derivable(RIBS_LEFT + RIBS_RIGHT)
    assert set(got) == {"rib_left", "rib_right", "rib", *(f"rib_{i}" for i in range(1, 13))}
    assert got["rib_left"] == tuple(RIBS_LEFT) and got["rib_right"] == tuple(RIBS_RIGHT)
    assert got["rib_7"] == ("rib_left_7", "rib_right_7")
    assert onto.leaves_of("rib", RIBS_LEFT + RIBS_RIGHT) == set(RIBS_LEFT + RIBS_RIGHT)
    assert onto.derivable(RIBS_LEFT) == {"rib_left": tuple(RIBS_LEFT)}
    assert onto.derivable(["rib_left", "rib_right"]) == {"rib": ("rib_left", "rib_right")}


def test_other_partitions(onto):
    han_seg_eyes = ["eyeball_anterior_left", "eyeball_anterior_right", "eyeball_posterior_left",
                    "eyeball_posterior_right"]
    assert set(onto.derivable(han_seg_eyes)) == {"eyeball_left", "eyeball_right", "eyeball_anterior",
                                                 "eyeball_posterior", "eyeball"}
    brats = ["necrotic_brain_tumor_core", "brain_edema", "enhancing_brain_tumor"]
    assert onto.derivable(brats) == {
        "brain_tumor_core": ("necrotic_brain_tumor_core", "enhancing_brain_tumor"),
        "brain_tumor": ("brain_tumor_core", "brain_edema")}
    assert onto.leaves_of("brain_tumor", brats) == set(brats)
    assert onto.derivable(["prostate_peripheral_zone", "prostate_transition_zone"]) == {
        "prostate": ("prostate_peripheral_zone", "prostate_transition_zone")}
    assert set(onto.derivable(["lung_upper_lobe_left", "lung_lower_lobe_left", "lung_upper_lobe_right",
                               "lung_middle_lobe_right", "lung_lower_lobe_right"])) == {
        "lung_left", "lung_right", "lung", "lung_upper_lobe", "lung_lower_lobe"}
    assert onto.derivable(["trachea", "bronchie"]) == {"trachea_and_bronchie": ("trachea", "bronchie")}
    with pytest.raises(OntologyError, match="'kidney' cannot be derived"):
        onto.leaves_of("kidney", ["kidney_left"])
    assert onto.leaves_of("kidney", ["kidney"]) == {"kidney"}


def test_parents_children_and_relations(onto):
    assert onto.parents("rib_left_3") == ["rib_3", "rib_left"]
    assert onto.children("kidney") == ["kidney_left", "kidney_right"]
    assert onto.children("rib")[:3] == ["rib_left", "rib_right", "rib_1"]
    assert onto.descendants("kidney") == {"kidney_left", "kidney_right"}
    assert {p.rel.value for p in onto["femur"].parents} == {"is_a"}
    assert {p.rel.value for p in onto["femur_left"].parents} == {"part_of"}
    assert "bone" in onto.ancestors("rib_left_1") and "muscle" in onto.ancestors("gluteus_maximus_left")
    assert onto.ancestors("liver_tumor") == {"tumor"}  # lesions hang off organs by located_in, not parents
    with pytest.raises(OntologyError, match="no concept with id 'kidneys'"):
        onto.ancestors("kidneys")  # ids only; names go through resolve()


def test_lesions(onto):
    assert onto.lesions_in("kidney") == ["kidney_tumor", "kidney_cyst"]
    assert onto.lesions_in("kidney_left") == ["kidney_cyst_left"]
    everything = set(onto.concepts)
    assert onto.organ_with_lesions("kidney", everything) == {"kidney_tumor", "kidney_cyst", "kidney_cyst_left",
                                                              "kidney_cyst_right"}
    assert onto.organ_with_lesions("kidney", {"kidney", "kidney_tumor", "kidney_cyst", "liver_tumor"}) == {
        "kidney_tumor", "kidney_cyst"}
    assert onto.organ_with_lesions("kidney_left", everything) == {"kidney_cyst_left"}
    # SAT-DS's "organ includes its lesions" adjustments, as a rule
    assert onto.organ_with_lesions("liver", {"liver", "liver_tumor"}) == {"liver_tumor"}
    assert onto.organ_with_lesions("pancreas", {"pancreas", "pancreas_tumor"}) == {"pancreas_tumor"}
    assert onto.organ_with_lesions("myocardium", everything) == {"myocardial_scar", "myocardial_edema"}
    assert onto.organ_with_lesions("heart_atrium_left", everything) == {"left_heart_atrium_scar"}
    assert onto.organ_with_lesions("heart", everything) == {"myocardial_scar", "myocardial_edema",
                                                             "left_heart_atrium_scar"}
    assert onto.organ_with_lesions("lung", everything) == {"lung_nodule", "lung_tumor", "covid_19_infection"}
    assert onto.organ_with_lesions("brain", everything) == {
        "brain_tumor", "brain_tumor_core", "necrotic_brain_tumor_core", "enhancing_brain_tumor", "brain_edema",
        "stroke", "white_matter_hyperintensities"}
    assert onto.organ_with_lesions("spleen", everything) == set()
    with pytest.raises(OntologyError):
        onto.organ_with_lesions("no_such_organ", everything)
    lesions = {c.id for c in onto.concepts.values() if c.kind == "lesion"}
    assert len(lesions) == 29
    assert {c for c in lesions if onto[c].located_in is None} == {
        "tumor", "intracranial_hemorrhage", "head_and_neck_tumor", "vestibular_schwannoma"}


def test_laterality_pairs(onto):
    pairs = 0
    for c in onto.concepts.values():
        if not c.counterpart:
            continue
        o = onto[c.counterpart]
        assert o.counterpart == c.id and {c.laterality, o.laterality} == {"left", "right"}
        if c.laterality == "left":
            pairs += 1
            assert o.name == re.sub(r"\bleft\b", "right", c.name)
            # both sides sit in one partition of a common parent: merging them is always exact
            common = set(onto.parents(c.id)) & set(onto.parents(o.id))
            assert any({c.id, o.id} <= set(p) for x in common for p in onto[x].partitions), c.id
    assert pairs == 114  # 110 + 4 added for totalsegmentator_mri
    unpaired = {c.id for c in onto.concepts.values() if c.laterality and not c.counterpart}
    assert unpaired == {"lung_middle_lobe_right", "left_auricle_of_heart", "left_heart_atrium_scar",
                        *(f"liver_segment_{i}" for i in range(2, 9))}
    for c in onto.concepts.values():  # a name with a side has that laterality
        side = {"left", "right"} & set(normalise_name(c.name).split())
        assert side == ({c.laterality} if c.laterality else set()), c.id


def test_ids_and_codes(onto):
    for c in onto.concepts.values():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c.id)
        for v in c.codes.values():
            assert re.fullmatch(r"\d{6,18}(:272741003=(7771000|24028007))?", v), (c.id, v)
    assert onto["kidney"].codes == {"SNOMEDCT": "64033007"}
    assert onto["kidney_left"].codes == {"SNOMEDCT": "64033007:272741003=7771000"}
    assert onto["heart_atrium_left"].codes == {"SNOMEDCT": "82471001"}
    assert sum(bool(c.codes) for c in onto.concepts.values()) == 149
    assert onto["thyroid_left"].codes == {}  # a lobe of an unpaired gland: no laterality expression


# ---------------------------------------------------------------------------------------------- validation
def _c(cid: str, name: str | None = None, **kw) -> Concept:
    kw.setdefault("region", "abdomen")
    if "parents" in kw:
        kw["parents"] = [{"id": p, "rel": "part_of"} if isinstance(p, str) else p for p in kw["parents"]]
    return Concept(id=cid, name=name or cid.replace("_", " "), **kw)


def _mini(*concepts: Concept) -> Ontology:
    return Ontology(OntologyFile(version="0.0.1", changelog=[], concepts=list(concepts)))


def _checks(o: Ontology) -> list[tuple[str, str]]:
    return [(f.concept, f.check) for f in o.validate()]


def _kidneys(**left) -> list[Concept]:
    kw = dict(laterality="left", counterpart="kidney_right", parents=["kidney"])
    kw.update(left)
    return [_c("kidney", partitions=[["kidney_left", "kidney_right"]]),
            _c("kidney_left", "left kidney", **kw),
            _c("kidney_right", "right kidney", laterality="right", counterpart="kidney_left", parents=["kidney"])]


def test_small_valid_ontology_has_no_findings():
    o = _mini(*_kidneys(), _c("kidney_tumor", "kidney tumor", kind="lesion", located_in="kidney"))
    assert o.validate() == []


def test_check_cycle():
    o = _mini(_c("a", parents=["b"]), _c("b", parents=["c"]), _c("c", parents=["a"]))
    assert [f.check for f in o.validate()] == ["acyclic"]
    assert "parent cycle" in o.validate()[0].message


def test_check_duplicate_id():
    assert _checks(_mini(_c("a"), _c("a", "other a"))) == [("a", "unique id")]


def test_check_duplicate_synonym():
    f = _mini(_c("a", synonyms=["Same Thing"]), _c("b", synonyms=["same_thing"])).validate()
    assert [(x.concept, x.check) for x in f] == [("a,b", "unique names")]
    assert "'same thing'" in f[0].message


def test_check_missing_parent():
    assert _checks(_mini(_c("a", parents=["ghost"]))) == [("a", "parent exists")]


def test_check_asymmetric_counterpart():
    o = _mini(*_kidneys()[:2], _c("kidney_right", "right kidney", laterality="right", parents=["kidney"]))
    assert _checks(o) == [("kidney_left", "laterality symmetric"), ("kidney_right", "laterality symmetric")]


def test_check_mirrored_name_needs_counterpart():
    o = _mini(*_kidneys(counterpart=None))
    assert _checks(o) == [("kidney_left", "laterality symmetric"), ("kidney_right", "laterality symmetric")]
    assert "'kidney_right' has the mirrored name" in o.validate()[0].message


def test_check_laterality_matches_name():
    assert _checks(_mini(*_kidneys(laterality="right"))) == [
        ("kidney_left", "laterality matches name"), ("kidney_left", "laterality symmetric"),
        ("kidney_right", "laterality symmetric")]
    assert _checks(_mini(_c("spleen", laterality="left"))) == [("spleen", "laterality matches name")]
    # a sided structure without a mirrored concept needs no counterpart
    assert _checks(_mini(_c("lung_middle_lobe_right", "right lung middle lobe", laterality="right"))) == []


def test_check_partition_member_without_parent_link():
    o = _mini(_c("kidney", partitions=[["kidney_left", "kidney_right"]]),
              _c("kidney_left", "left kidney", laterality="left", counterpart="kidney_right", parents=["kidney"]),
              _c("kidney_right", "right kidney", laterality="right", counterpart="kidney_left"))
    f = o.validate()
    assert [(x.concept, x.check) for x in f] == [("kidney", "partition")]
    assert f[0].message == "member 'kidney_right' does not list 'kidney' as a parent"
    assert o.derivable({"kidney_left", "kidney_right"}) == {"kidney": ("kidney_left", "kidney_right")}


def test_check_partition_shape():
    o = _mini(_c("a", partitions=[["b"], ["b", "b"], ["b", "ghost"]]), _c("b", parents=["a"]),
              _c("v", parents=["w"], variant=True), _c("v2", parents=["w"], variant=True),
              _c("w", partitions=[["v", "v2"]]))
    assert [(f.concept, f.message) for f in o.validate()] == [
        ("a", "a partition needs at least two members"),
        ("a", "a partition lists a member twice"),
        ("a", "member 'ghost' is not a concept"),
        ("w", "a partition of variants only can never be derived")]
    assert o.derivable({"b"}) == {}  # the broken partitions derive nothing and do not crash


def test_check_located_in():
    o = _mini(_c("kidney"), _c("renal_pelvis", "renal pelvis", located_in="kidney"),
              _c("kidney_tumor", "kidney tumor", kind="lesion", located_in="kidney"),
              _c("cyst", kind="lesion", located_in="kidney_tumor"), _c("polyp", kind="lesion", located_in="ghost"))
    assert [(f.concept, f.check, f.message) for f in o.validate()] == [
        ("renal_pelvis", "lesion location", "only lesions declare located_in"),
        ("cyst", "lesion location", "'kidney_tumor' is a lesion, not an anatomical structure"),
        ("polyp", "lesion location", "organ 'ghost' is not a concept")]


def test_check_name_style():
    assert _checks(_mini(_c("kidney", "Kidney"))) == [("kidney", "name style")]


def test_schema_rejects_bad_files(tmp_path):
    good = {"version": "1", "changelog": [], "concepts": [{"id": "liver", "name": "liver", "region": "abdomen"}]}
    p = tmp_path / "o.yaml"
    p.write_text(yaml.safe_dump(good))
    assert len(Ontology.from_file(p)) == 1
    for bad, msg in [({"id": "Liver"}, "lower-case slug"), ({"region": "belly"}, "region 'belly' is not one of"),
                     ({"colour": "red"}, "Extra inputs are not permitted"),
                     ({"codes": {"ICD": "1"}}, r"unknown code system\(s\) \['ICD'\]"),
                     ({"kind": "organ"}, "Input should be 'anatomy' or 'lesion'")]:
        p.write_text(yaml.safe_dump({**good, "concepts": [{**good["concepts"][0], **bad}]}))
        with pytest.raises(OntologyError, match=msg) as e:
            Ontology.from_file(p)
        assert str(p) in str(e.value)


# ---------------------------------------------------------------------------------------------- CLI
runner = CliRunner()


def test_cli_resolve():
    r = runner.invoke(app, ["ontology", "resolve", "Vertebrae_L1", "ct_liver", "Left Kidney", "postcava"])
    assert r.exit_code == 0, r.output
    assert r.stdout == ("Vertebrae_L1\tlumbar_vertebra_1\nct_liver\tliver\nLeft Kidney\tkidney_left\n"
                        "postcava\tinferior_vena_cava\n")


def test_cli_resolve_unknown_names_exit_1():
    r = runner.invoke(app, ["ontology", "resolve", "spleen", "wombat", "lumbar vertebra 7"])
    assert r.exit_code == 1
    assert r.stdout == "spleen\tspleen\n"
    assert "error: 'wombat' is not a concept name, synonym or id" in r.stderr
    assert "'lumbar vertebra 7' is not a concept name" in r.stderr and "did you mean" in r.stderr
    assert "2 of 3 name(s) did not resolve" in r.stderr


def test_cli_resolve_from_stdin():
    r = runner.invoke(app, ["ontology", "resolve"], input="mri_prostate\n\nPZ\n  T12  \n")
    assert r.exit_code == 0, r.output
    assert r.stdout == "mri_prostate\tprostate\nPZ\tprostate_peripheral_zone\nT12\tthoracic_vertebra_12\n"


def _show(name: str) -> dict[str, str]:
    r = runner.invoke(app, ["ontology", "show", name])
    assert r.exit_code == 0, r.output
    rows = [line.split(":", 1) for line in r.stdout.splitlines()]
    assert len({len(k) + len(v) - len(v.lstrip()) for k, v in rows}) == 1  # values start in one column
    return {k: v.strip() for k, v in rows}


def test_cli_show():
    assert _show("kidneys") == {
        "id": "kidney", "name": "kidney", "synonyms": "kidneys", "region": "abdomen", "kind": "anatomy",
        "parents": "- (root)", "children": "kidney_left (left kidney) [part_of], kidney_right (right kidney) [part_of]",
        "partition 1": "kidney_left + kidney_right",
        "lesions": "kidney_tumor (kidney tumor), kidney_cyst (kidney cyst)",
        "lesions in parts": "kidney_cyst_left (in kidney_left), kidney_cyst_right (in kidney_right)",
        "codes": "SNOMEDCT 64033007"}
    assert _show("left kidney cyst") == {
        "id": "kidney_cyst_left", "name": "left kidney cyst", "synonyms": "kidney_cyst_left, left renal cyst",
        "region": "abdomen", "kind": "lesion", "laterality": "left, counterpart kidney_cyst_right (right kidney cyst)",
        "parents": "kidney_cyst (kidney cyst) [part_of]", "children": "-", "located in": "kidney_left (left kidney)",
        "codes": "-"}
    l6 = _show("L6")
    assert l6["kind"] == "anatomy (variant)" and l6["note"].startswith("Anatomical variant")
    assert _show("right lung middle lobe")["laterality"] == "right, no counterpart"
    assert _show("rib")["partition 2"] == " + ".join(f"rib_{i}" for i in range(1, 13))
    r = runner.invoke(app, ["ontology", "show", "wombat"])
    assert r.exit_code == 1 and "'wombat' is not a concept name" in r.stderr


def test_cli_tree():
    r = runner.invoke(app, ["ontology", "tree", "kidney"])
    assert r.exit_code == 0, r.output
    assert r.stdout == "kidney [kidney]\n├── left kidney [kidney_left]\n└── right kidney [kidney_right]\n"
    r = runner.invoke(app, ["ontology", "tree", "brain tumor"])
    assert r.stdout == ("brain tumor [brain_tumor] (lesion)\n"
                        "├── brain tumor core [brain_tumor_core] (lesion)\n"
                        "│   ├── necrotic brain tumor core [necrotic_brain_tumor_core] (lesion)\n"
                        "│   └── enhancing brain tumor [enhancing_brain_tumor] (lesion)\n"
                        "└── brain edema [brain_edema] (lesion)\n")
    r = runner.invoke(app, ["ontology", "tree", "vertebrae", "--depth", "1"])
    assert r.stdout.splitlines() == ["vertebrae [vertebrae]", "├── cervical vertebrae [cervical_vertebrae]",
                                     "├── thoracic vertebrae [thoracic_vertebrae]",
                                     "└── lumbar vertebrae [lumbar_vertebrae]"]
    r = runner.invoke(app, ["ontology", "tree"])
    lines = r.stdout.splitlines()
    assert lines[0] == "bone [bone]" and "├── femur [femur] (is_a)" in lines
    assert sum(not line.startswith(("├", "└", "│", " ")) for line in lines) == 86  # one line per root


def test_cli_validate(tmp_path, monkeypatch):
    r = runner.invoke(app, ["ontology", "validate"])
    assert r.exit_code == 0, r.output
    assert r.stdout == "ontology 1.0.0: 528 concepts, valid\n"
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({"version": "9", "changelog": [], "concepts": [
        {"id": "a", "name": "a", "region": "abdomen", "parents": [{"id": "ghost", "rel": "part_of"}]}]}))
    r = runner.invoke(app, ["ontology", "--file", str(broken), "validate"])
    assert r.exit_code == 1
    assert r.stdout == "a: parent exists: parent 'ghost' is not a concept\n"
    assert "1 problem(s) in" in r.stderr
    monkeypatch.setenv("SATDS_ONTOLOGY", str(broken))
    assert runner.invoke(app, ["ontology", "validate"]).exit_code == 1
    r = runner.invoke(app, ["ontology", "--file", str(tmp_path / "missing.yaml"), "validate"])
    assert r.exit_code == 1 and "ontology file not found" in r.stderr
