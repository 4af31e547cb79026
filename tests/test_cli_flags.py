"""Every console command spells its flags one way, nnU-Net's: an option that takes a value has one dash
(`-i`, `-np`, `-size`), a switch has two (`--npz`, `--with_dwi`), words are joined by underscores. Spellings
from before this rule still parse, as aliases."""
from __future__ import annotations

import argparse

import pytest

from isles_pipeline.cli import (
    convert_isles2018,
    convert_isles2024,
    demo,
    determine_postprocessing,
    dicom_to_nifti,
    evaluate,
    generate_phantom,
    perfusion_maps,
    phantom_report,
    plan_and_preprocess,
    predict,
    train,
)

PARSERS = {
    "isles_convert_isles2018": convert_isles2018.build_parser,
    "isles_convert_isles2024": convert_isles2024.build_parser,
    "isles_demo": demo.build_parser,
    "isles_determine_postprocessing": determine_postprocessing.build_parser,
    "isles_dicom_to_nifti": dicom_to_nifti.build_parser,
    "isles_evaluate": evaluate.build_parser,
    "isles_generate_phantom": generate_phantom.build_parser,
    "isles_perfusion_maps": perfusion_maps.build_parser,
    "isles_phantom_report": phantom_report.build_parser,
    "isles_plan_and_preprocess": lambda: plan_and_preprocess._parser("", True, True, True, True),
    "isles_predict": predict.build_parser,
    "isles_train": train.parser,
}


def convention_breaks(parser: argparse.ArgumentParser) -> list[str]:
    """The primary spelling (the first) of each option that breaks the rule above."""
    breaks = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        primary = action.option_strings[0]
        switch = action.nargs == 0 or action.nargs == "?"
        dashes = len(primary) - len(primary.lstrip("-"))
        if "-" in primary.lstrip("-") or dashes != (2 if switch else 1):
            breaks.append(primary)
    return breaks


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_flag_follows_the_convention(command):
    assert convention_breaks(PARSERS[command]()) == []


def test_the_convention_check_can_fail():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int)
    parser.add_argument("-verbose", action="store_true")
    parser.add_argument("--with-dwi", action="store_true")
    assert convention_breaks(parser) == ["--size", "-verbose", "--with-dwi"]


@pytest.mark.parametrize("new, old", [
    (["-o", "x", "-size", "64", "-seed", "3", "--with_dwi", "-layout", "isles2024"],
     ["-o", "x", "--size", "64", "--seed", "3", "--with-dwi", "--layout", "isles2024"]),
])
def test_old_spellings_still_parse_the_same(new, old):
    parser = generate_phantom.build_parser()
    assert vars(parser.parse_args(new)) == vars(parser.parse_args(old))


def test_renamed_predict_and_report_flags_keep_their_aliases():
    args = ["-i", "in", "-o", "out", "-d", "18"]
    parser = predict.build_parser()
    for spelling in ("-smir_method", "-smir_name"):
        assert parser.parse_args(args + [spelling, "m"]).smir_name == "m"
    report = phantom_report.build_parser()
    for spelling in ("--no_own_maps", "--no-own-maps"):
        assert report.parse_args(["folder", spelling]).no_own_maps
