"""The shipped CI files: the GitHub workflow against the workflow schema and the action inputs,
the emulator script, and the AWS Device Farm test spec."""

from __future__ import annotations

import importlib.resources
import json
import re
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

CI = Path(__file__).resolve().parents[1] / "ci"
WORKFLOW = CI / "android-emulator.yml"
RUNNER = "reactivecircus/android-emulator-runner@v2"
# Inputs of reactivecircus/android-emulator-runner (its action.yml at v2.37.0).
RUNNER_INPUTS = {
    "api-level", "system-image-api-level", "target", "arch", "profile", "cores", "ram-size", "heap-size",
    "sdcard-path-or-size", "disk-size", "avd-name", "force-avd-creation", "emulator-boot-timeout", "emulator-port",
    "emulator-options", "disable-animations", "disable-spellchecker", "disable-linux-hw-accel",
    "enable-hw-keyboard", "emulator-build", "working-directory", "ndk", "cmake", "channel", "script",
    "pre-emulator-launch-script",
}
RUNNER_REQUIRED = {"api-level", "script"}
# Inputs of the other actions the workflow uses (their action.yml files).
OTHER_INPUTS = {
    "actions/checkout": {"repository", "ref", "token", "path", "fetch-depth", "submodules", "lfs"},
    "actions/setup-python": {"python-version", "python-version-file", "cache", "architecture"},
    "actions/setup-node": {"node-version", "node-version-file", "cache", "registry-url"},
    "actions/cache": {"path", "key", "restore-keys", "enableCrossOsArchive", "fail-on-cache-miss", "lookup-only"},
    "actions/upload-artifact": {"name", "path", "if-no-files-found", "retention-days", "compression-level",
                                "overwrite", "include-hidden-files"},
    "actions/download-artifact": {"name", "path", "pattern", "merge-multiple", "github-token", "repository",
                                  "run-id"},
}


class WorkflowLoader(yaml.SafeLoader):
    """YAML 1.1 reads the key `on` as True; GitHub reads it as the string 'on'."""


WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.load(WORKFLOW.read_text(), Loader=WorkflowLoader)  # noqa: S506 (a SafeLoader subclass)


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_workflow_matches_the_github_schema(workflow: dict) -> None:
    schema_file = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "github-workflows.json"
    schema = json.loads(schema_file.read_text())
    errors = [f"{list(error.path)}: {error.message}" for error in jsonschema.Draft7Validator(schema).iter_errors(workflow)]
    assert errors == []


def test_action_inputs_are_known(workflow: dict) -> None:
    for step in steps(workflow):
        uses = step.get("uses")
        if uses is None:
            continue
        name = uses.split("@")[0]
        known = RUNNER_INPUTS if uses == RUNNER else OTHER_INPUTS.get(name)
        assert known is not None, f"step {step.get('name')!r} uses an action this test does not know: {uses}"
        unknown = set(step.get("with", {})) - known
        assert not unknown, f"step {step.get('name')!r}: unknown inputs {sorted(unknown)} for {uses}"
        if uses == RUNNER:
            assert RUNNER_REQUIRED <= set(step["with"]), f"step {step.get('name')!r} lacks {RUNNER_REQUIRED}"


def test_emulator_runs_headless_with_capture(workflow: dict) -> None:
    run = next(step for step in steps(workflow) if step.get("name") == "Run the suite on the emulator")
    options = run["with"]["emulator-options"]
    assert "-no-window" in options
    assert "-tcpdump" in options
    assert run["with"]["emulator-boot-timeout"] == "${{ inputs.boot-timeout }}"
    assert run["with"]["script"] == "bash ci/run-android-suite.sh"


def test_kvm_and_avd_cache(workflow: dict) -> None:
    names = [step.get("name") for step in steps(workflow)]
    assert names.index("Enable KVM") < names.index("Run the suite on the emulator")
    cache = next(step for step in steps(workflow) if step.get("uses", "").startswith("actions/cache@"))
    assert "~/.android/avd/*" in cache["with"]["path"]
    create = next(step for step in steps(workflow) if step.get("name") == "Create the AVD and its snapshot")
    assert create["if"] == "steps.avd-cache.outputs.cache-hit != 'true'"


def test_artifacts_upload_even_after_failures(workflow: dict) -> None:
    uploads = [step for step in steps(workflow) if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert {step["with"]["name"] for step in uploads} == {"allure-results", "android-report"}
    for step in uploads:
        assert step["if"] == "${{ always() }}"


def test_inputs_are_documented_and_consistent(workflow: dict) -> None:
    dispatch = workflow["on"]["workflow_dispatch"]["inputs"]
    called = workflow["on"]["workflow_call"]["inputs"]
    assert set(dispatch) == set(called)
    for name, spec in dispatch.items():
        assert spec.get("description"), f"input {name} has no description"
    used = set(re.findall(r"inputs\.([\w-]+)", WORKFLOW.read_text()))
    assert used <= set(dispatch), f"undefined inputs used: {sorted(used - set(dispatch))}"


def test_suite_script_is_valid_bash() -> None:
    script = CI / "run-android-suite.sh"
    assert script.stat().st_mode & 0o111, "ci/run-android-suite.sh must be executable"
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    text = script.read_text()
    assert "--target android" in text
    assert 'emulator-${EMULATOR_PORT:-5554}' in text


def test_device_farm_spec() -> None:
    spec = yaml.safe_load((CI / "aws-device-farm-testspec.yml").read_text())
    assert spec["version"] == 0.1
    assert spec["android_test_host"] == "amazon_linux_2"
    assert set(spec["phases"]) <= {"install", "pre_test", "test", "post_test"}
    test_commands = " ".join(spec["phases"]["test"]["commands"])
    assert '--serial "$DEVICEFARM_DEVICE_UDID"' in test_commands
    assert '--apk "$DEVICEFARM_APP_PATH"' in test_commands
    assert "$DEVICEFARM_LOG_DIR" in test_commands
    assert spec["artifacts"] == ["$DEVICEFARM_LOG_DIR"]
