"""The GitHub Actions workflows: who may do what, on which event, and what the deploy and
publish scripts do with the values they are given.

The YAML is read as data and checked for the properties that matter (least privilege, no
long-lived keys, forks kept away from credentials, one deployment at a time). The shell
steps that make decisions are run for real under bash, with fake `pulumi` and `aws`
commands on PATH, so a broken script fails here rather than in the middle of a deployment.
actionlint checks the rest (expressions, action inputs, deprecated runtimes, shellcheck).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import RunStack
from tests.test_image_platforms import BUILDX_INDEX
from tools import image_platforms as ip

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BIN = Path(sys.executable).parent

PULUMI_ACTION = "pulumi/actions"
AWS_ACTION = "aws-actions/configure-aws-credentials"
PROD_STACK = "${{ vars.PULUMI_ORG }}/prod"
TOKEN = "${{ secrets.PULUMI_ACCESS_TOKEN }}"

# The only write grants any job holds: the OIDC token where a role is assumed, and the
# pull-request comments of the preview and of the cost of the change. Everything else reads
# the repository, no more.
ALLOWED_WRITES = {
    ("preview.yml", "preview"): {"id-token", "pull-requests"},
    ("preview.yml", "cost"): {"pull-requests"},
    ("deploy.yml", "deploy"): {"id-token"},
    ("image.yml", "image"): {"id-token"},
}


# ---------------------------------------------------------------------------------------
# Reading the workflows


def load(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def all_workflows() -> dict[str, dict[str, Any]]:
    return {path.name: load(path.name) for path in sorted(WORKFLOWS.glob("*.y*ml"))}


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    """The `on:` mapping. YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True."""
    on = workflow["on"] if "on" in workflow else workflow[True]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def action_of(step: dict[str, Any]) -> str | None:
    uses = step.get("uses")
    return uses.split("@", 1)[0] if uses else None


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [step for step in job.get("steps", []) if action_of(step) == action]


def only_step_using(job: dict[str, Any], action: str) -> dict[str, Any]:
    found = steps_using(job, action)
    assert len(found) == 1, f"expected one {action} step, found {len(found)}"
    return found[0]


def step_with_id(job: dict[str, Any], step_id: str) -> dict[str, Any]:
    for step in job.get("steps", []):
        if step.get("id") == step_id:
            return step
    raise AssertionError(f"no step with id {step_id!r}")


def pulumi_on_prod(job: dict[str, Any], command: str) -> dict[str, Any]:
    """The job's one Pulumi step, after checking it runs `command` on the prod stack judged by the
    policy pack with prod's policy config."""
    step = only_step_using(job, PULUMI_ACTION)
    expected = {
        "command": command,
        "stack-name": PROD_STACK,
        "policyPacks": "policies",
        "policyPackConfigs": "policies/config/prod.json",
    }
    assert {key: step["with"].get(key) for key in expected} == expected
    return step


def index_of(job: dict[str, Any], step: dict[str, Any]) -> int:
    return next(i for i, s in enumerate(job["steps"]) if s is step)


def every_job() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (name, job_id, job)
        for name, workflow in all_workflows().items()
        for job_id, job in workflow["jobs"].items()
    ]


def every_step() -> list[tuple[str, str, dict[str, Any]]]:
    return [(name, job_id, step) for name, job_id, job in every_job() for step in job.get("steps", [])]


def granted_writes(permissions: Any) -> set[str]:
    if permissions is None:
        return set()
    assert isinstance(permissions, dict), f"permissions must list scopes, not {permissions!r}"
    return {scope for scope, level in permissions.items() if level == "write"}


# ---------------------------------------------------------------------------------------
# Running a step's script as the runner does (`shell: bash`)

EXPRESSION = re.compile(r"\$\{\{\s*([A-Za-z_][\w.-]*)\s*\}\}")


def resolve(value: Any, context: dict[str, str]) -> str:
    """Substitute `${{ a.b.c }}` expressions from `context`; a missing step output is empty,
    as on GitHub. Anything more complex is not expected in an env value and fails."""

    def lookup(match: re.Match[str]) -> str:
        path = match.group(1)
        if path in context:
            return context[path]
        if path.startswith("steps.") and ".outputs." in path:
            return ""
        raise AssertionError(f"no value for {path} in the test context")

    text = str(value)
    resolved = EXPRESSION.sub(lookup, text)
    assert "${{" not in resolved, f"unexpected expression in {text!r}"
    return resolved


def write_fakes(directory: Path) -> None:
    """`pulumi` and `aws` stand-ins: each call is logged as a JSON line to $FAKE_LOG."""
    header = f"#!{sys.executable}\nimport json, os, sys\n"
    log = "with open(os.environ['FAKE_LOG'], 'a') as log:\n    log.write(json.dumps(sys.argv) + '\\n')\n"
    pulumi = (
        header
        + log
        + """args = sys.argv[1:]
if args[:2] == ['stack', 'output'] and '--json' in args:
    print(os.environ['FAKE_STACK_OUTPUTS'])
elif args[:2] == ['stack', 'export']:
    with open(args[args.index('--file') + 1], 'w') as f:
        f.write(os.environ['FAKE_STATE'])
else:
    sys.exit('fake pulumi: unexpected ' + ' '.join(args))
"""
    )
    aws = (
        header
        + log
        + """args = sys.argv[1:]
if args[:3] == ['ecs', 'wait', 'services-stable']:
    # One exit status per call, from FAKE_WAIT_EXITS ("255,0": fail once, then succeed).
    counter = os.environ['FAKE_LOG'] + '.waits'
    calls = int(open(counter).read()) if os.path.exists(counter) else 0
    open(counter, 'w').write(str(calls + 1))
    statuses = os.environ.get('FAKE_WAIT_EXITS', '0').split(',')
    sys.exit(int(statuses[min(calls, len(statuses) - 1)]))
elif args[:2] == ['ecs', 'describe-services']:
    service = args[args.index('--services') + 1]
    print(json.loads(os.environ['FAKE_RUNNING'])[service])
elif args[0] == 'ecr' and args[1] in json.loads(os.environ.get('FAKE_ECR', '{}')):
    # FAKE_ECR: each ECR command's JSON answer, or the error message it fails with.
    answer = json.loads(os.environ['FAKE_ECR'])[args[1]]
    if isinstance(answer, str):
        sys.exit(answer)
    if '--query' in args:
        answer = answer['repositories'][0]['repositoryUri']
    print(answer if isinstance(answer, str) else json.dumps(answer))
else:
    sys.exit('fake aws: unexpected ' + ' '.join(args))
"""
    )
    for name, text in (("pulumi", pulumi), ("aws", aws)):
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)


class Runner:
    """Runs steps of one job in a scratch directory, carrying step outputs forward."""

    def __init__(self, tmp_path: Path, job: dict[str, Any], context: dict[str, str]) -> None:
        tmp_path.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp_path
        self.job = job
        self.context = dict(context)
        self.fakes = tmp_path / "fakes"
        self.fakes.mkdir()
        write_fakes(self.fakes)
        self.log = tmp_path / "calls.log"
        self.log.touch()
        self.runner_temp = tmp_path / "runner-temp"
        self.runner_temp.mkdir()

    def run(
        self, step: dict[str, Any], cwd: Path | None = None, **fake_env: str
    ) -> subprocess.CompletedProcess[str]:
        output_file = self.tmp / f"output-{step.get('id', 'step')}"
        output_file.write_text("", encoding="utf-8")
        env = {
            "PATH": os.pathsep.join([str(self.fakes), str(BIN), os.environ["PATH"]]),
            "HOME": str(self.tmp),
            "RUNNER_TEMP": str(self.runner_temp),
            "GITHUB_OUTPUT": str(output_file),
            "FAKE_LOG": str(self.log),
            **fake_env,
        }
        for key, value in {**self.job.get("env", {}), **step.get("env", {})}.items():
            env[key] = resolve(value, self.context)
        script = self.tmp / "script.sh"
        script.write_text(step["run"], encoding="utf-8")
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=cwd or self.tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if "id" in step:
            for line in output_file.read_text(encoding="utf-8").splitlines():
                key, _, value = line.partition("=")
                self.context[f"steps.{step['id']}.outputs.{key}"] = value
        return result

    def calls(self, command: str) -> list[list[str]]:
        lines = self.log.read_text(encoding="utf-8").splitlines()
        return [argv[1:] for argv in map(json.loads, lines) if Path(argv[0]).name == command]


# ---------------------------------------------------------------------------------------
# Every workflow


def test_the_four_workflows_exist() -> None:
    assert {"checks.yml", "preview.yml", "deploy.yml", "policy.yml"} <= set(all_workflows())


@pytest.mark.parametrize("name", sorted(all_workflows()))
def test_workflow_token_reads_the_repository_only(name: str) -> None:
    assert load(name).get("permissions") == {"contents": "read"}


def test_write_grants_only_where_a_job_needs_them() -> None:
    grants = {
        (name, job_id): granted_writes(job.get("permissions"))
        for name, job_id, job in every_job()
        if granted_writes(job.get("permissions"))
    }
    assert grants == ALLOWED_WRITES


def test_aws_roles_are_assumed_only_by_jobs_holding_an_oidc_token() -> None:
    assuming = {(name, job_id) for name, job_id, job in every_job() if steps_using(job, AWS_ACTION)}
    with_token = {key for key, scopes in ALLOWED_WRITES.items() if "id-token" in scopes}
    assert assuming == with_token


@pytest.mark.parametrize("name", sorted(all_workflows()))
def test_no_long_lived_aws_keys(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8").lower()
    for key in (
        "aws-access-key-id",
        "aws-secret-access-key",
        "aws-session-token",
        "aws_access_key_id",
        "aws_secret_access_key",
    ):
        assert key not in text, f"{name} mentions {key}"


@pytest.mark.parametrize(
    ("name", "job_id", "variable"),
    [
        ("preview.yml", "preview", "AWS_PREVIEW_ROLE_ARN"),
        ("deploy.yml", "deploy", "AWS_DEPLOY_ROLE_ARN"),
        ("image.yml", "image", "AWS_IMAGE_ROLE_ARN"),
    ],
)
def test_roles_come_from_repository_variables(name: str, job_id: str, variable: str) -> None:
    step = only_step_using(load(name)["jobs"][job_id], AWS_ACTION)
    assert step["with"]["role-to-assume"] == f"${{{{ vars.{variable} }}}}"
    # The image goes to the region of the stack it is for, read from its stack file.
    region = (
        "${{ steps.target.outputs.region }}"
        if name == "image.yml"
        else "${{ vars.AWS_REGION || 'us-west-2' }}"
    )
    assert step["with"]["aws-region"] == region


@pytest.mark.parametrize("name", sorted(all_workflows()))
def test_no_untrusted_trigger(name: str) -> None:
    """pull_request_target and workflow_run run with secrets on code a fork controls."""
    assert not {"pull_request_target", "workflow_run"} & set(triggers(load(name)))


def test_no_expression_inside_a_script() -> None:
    """`${{ }}` is pasted into the script before bash parses it (script injection):
    values reach scripts through env: only."""
    offenders = [
        (name, job_id, step.get("name"))
        for name, job_id, step in every_step()
        if "${{" in step.get("run", "")
    ]
    assert offenders == []


def test_every_action_carries_a_version() -> None:
    versioned = re.compile(r"^[\w.-]+/[\w./-]+@(v\d+(\.\d+){0,2}|[0-9a-f]{40})$")
    unversioned = [
        step["uses"] for _, _, step in every_step() if "uses" in step and not versioned.match(step["uses"])
    ]
    assert unversioned == []


def test_reusable_workflows_are_local_and_exist() -> None:
    for _, _, job in every_job():
        if "uses" in job:
            assert job["uses"].startswith("./.github/workflows/")
            assert (ROOT / job["uses"]).is_file()
            assert "workflow_call" in triggers(load(Path(job["uses"]).name))


def test_checkouts_do_not_persist_the_token() -> None:
    checkouts = [step for _, _, step in every_step() if action_of(step) == "actions/checkout"]
    assert checkouts
    assert all(step.get("with", {}).get("persist-credentials") is False for step in checkouts)


def test_every_job_has_a_timeout() -> None:
    missing = [
        (name, job_id) for name, job_id, job in every_job() if "steps" in job and "timeout-minutes" not in job
    ]
    assert missing == []


def test_pulumi_token_reaches_only_the_steps_that_run_pulumi() -> None:
    for name, workflow in all_workflows().items():
        assert "secrets." not in json.dumps(workflow.get("env", {})), name
        for job_id, job in workflow["jobs"].items():
            assert "secrets." not in json.dumps(job.get("env", {})), (name, job_id)
            assert "secrets" not in job, f"{name}:{job_id} passes secrets to a reusable workflow"
            for step in job.get("steps", []):
                if "secrets." in json.dumps(step.get("env", {})):
                    runs_pulumi = action_of(step) == PULUMI_ACTION or "pulumi " in step.get("run", "")
                    assert runs_pulumi, (name, job_id, step.get("name"))
                    assert step["env"].get("PULUMI_ACCESS_TOKEN") == TOKEN


@pytest.mark.parametrize(
    ("name", "job_id", "variables"),
    [
        ("preview.yml", "preview", {"vars.PULUMI_ORG", "vars.AWS_PREVIEW_ROLE_ARN"}),
        ("deploy.yml", "deploy", {"vars.PULUMI_ORG", "vars.AWS_DEPLOY_ROLE_ARN"}),
        ("policy.yml", "publish", {"vars.PULUMI_ORG"}),
        ("image.yml", "image", {"vars.APP_REPOSITORY", "vars.AWS_IMAGE_ROLE_ARN"}),
    ],
)
def test_missing_repository_variables_stop_the_job_first(
    tmp_path: Path, name: str, job_id: str, variables: set[str]
) -> None:
    job = load(name)["jobs"][job_id]
    guard = next(step for step in job["steps"] if step.get("name") == "Check the delivery settings")
    first_cloud_step = min(
        index_of(job, step) for step in job["steps"] if action_of(step) in (PULUMI_ACTION, AWS_ACTION)
    )
    assert index_of(job, guard) < first_cloud_step
    # image.yml's job environment also names its dispatch inputs.
    set_up = dict.fromkeys(variables, "value") | {"inputs.stack": "dev", "inputs.tag": "v1.0.0"}
    assert Runner(tmp_path / "set", job, set_up).run(guard).returncode == 0
    for variable in variables:
        result = Runner(tmp_path / variable, job, set_up | {variable: ""}).run(guard)
        assert result.returncode != 0
        assert variable.removeprefix("vars.") in result.stdout


def actionlint(cwd: Path, *files: str) -> subprocess.CompletedProcess[str]:
    """The dev requirements install actionlint next to the interpreter; shellcheck, found on
    PATH, checks the run: scripts."""
    binary = BIN / "actionlint"
    assert binary.is_file(), f"{binary} is missing: install requirements-dev.txt"
    return subprocess.run(
        [str(binary), "-no-color", *files],
        cwd=cwd,
        env={**os.environ, "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")])},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_actionlint_finds_nothing() -> None:
    files = sorted(str(path.relative_to(ROOT)) for path in WORKFLOWS.glob("*.y*ml"))
    result = actionlint(ROOT, *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_what_it_is_relied_on_to_catch(tmp_path: Path) -> None:
    """A clean verdict means something only if the same binary rejects a faulty workflow:
    script injection from a pull request title, an undefined step output, a misspelt action
    input, and a shell mistake that only shellcheck sees."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        """on: pull_request
jobs:
  bad:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
        with:
          fetch-dept: 0
      - run: echo "${{ github.event.pull_request.title }}"
      - run: echo "${{ steps.missing.outputs.value }}"
      - run: cd $HOME/wwhd && ls
""",
        encoding="utf-8",
    )
    result = actionlint(tmp_path, ".github/workflows/bad.yml")
    assert result.returncode == 1, result.stdout + result.stderr
    for rule in ("[expression]", "[action]", "[shellcheck]"):
        assert rule in result.stdout, result.stdout
    assert "github.event.pull_request.title" in result.stdout
    assert "missing" in result.stdout
    assert "fetch-dept" in result.stdout


def test_dependabot_updates_actions_and_python_requirements() -> None:
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text(encoding="utf-8"))
    updates = {update["package-ecosystem"]: update for update in config["updates"]}
    assert set(updates) == {"github-actions", "pip"}
    pip_dirs = updates["pip"].get("directories") or [updates["pip"]["directory"]]
    assert {"/", "/policies"} <= set(pip_dirs)
    for directory in pip_dirs:
        assert (ROOT / directory.strip("/") / "requirements.txt").is_file()


# ---------------------------------------------------------------------------------------
# checks.yml


def test_checks_run_on_pull_requests_pushes_and_for_other_workflows() -> None:
    assert {"pull_request", "push", "workflow_call"} <= set(triggers(load("checks.yml")))


def test_checks_run_the_ci_script_without_credentials() -> None:
    text = (WORKFLOWS / "checks.yml").read_text(encoding="utf-8")
    assert "secrets." not in text and "vars." not in text
    (job,) = load("checks.yml")["jobs"].values()
    assert "permissions" not in job or not granted_writes(job["permissions"])
    assert [step["run"] for step in job["steps"] if "run" in step] == ["bash .ci/run"]
    assert (ROOT / ".ci" / "run").is_file()


def test_checks_use_python_311_with_a_pip_cache_keyed_on_the_requirements() -> None:
    (job,) = load("checks.yml")["jobs"].values()
    step = only_step_using(job, "actions/setup-python")
    assert step["with"]["python-version"] == "3.11"
    assert step["with"]["cache"] == "pip"
    keyed = set(step["with"]["cache-dependency-path"].split())
    # Every file requirements-dev.txt pulls in, so a change to any of them refreshes the cache.
    included = {
        line.split(maxsplit=1)[1]
        for line in (ROOT / "requirements-dev.txt").read_text(encoding="utf-8").splitlines()
        if line.startswith("-r ")
    }
    assert keyed == {"requirements-dev.txt", *included}
    assert index_of(job, step) < next(i for i, s in enumerate(job["steps"]) if "run" in s)


def test_checks_cancel_superseded_runs_of_a_pull_request_only() -> None:
    concurrency = load("checks.yml")["concurrency"]
    assert "github.event.pull_request.number" in concurrency["group"]
    assert concurrency["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"


# ---------------------------------------------------------------------------------------
# preview.yml


def test_preview_runs_on_pull_requests_to_main_only() -> None:
    assert triggers(load("preview.yml")) == {"pull_request": {"branches": ["main"]}}


def test_preview_skips_pull_requests_from_forks() -> None:
    """Their token cannot comment (nor assume a role): checks.yml covers them offline."""
    jobs = load("preview.yml")["jobs"]
    assert set(jobs) == {"preview", "cost"}
    for job in jobs.values():
        assert "github.event.pull_request.head.repo.full_name == github.repository" in job["if"]
        assert "github.actor != 'dependabot[bot]'" in job["if"]


def test_preview_comments_the_prod_preview_judged_by_the_prod_policy_config() -> None:
    job = load("preview.yml")["jobs"]["preview"]
    step = pulumi_on_prod(job, "preview")
    assert step["with"]["comment-on-pr"] is True
    assert step["env"] == {"PULUMI_ACCESS_TOKEN": TOKEN}
    # Python for the CLI's virtualenvs and the role must be in place before Pulumi runs.
    assert index_of(job, only_step_using(job, "actions/setup-python")) < index_of(job, step)
    assert index_of(job, only_step_using(job, AWS_ACTION)) < index_of(job, step)


def cost_job() -> dict[str, Any]:
    return load("preview.yml")["jobs"]["cost"]


def test_the_cost_comment_needs_no_cloud_credentials_and_may_only_comment() -> None:
    job = cost_job()
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "secrets." not in json.dumps(job) and "vars." not in json.dumps(job)
    assert not steps_using(job, AWS_ACTION) and not steps_using(job, PULUMI_ACTION)


def test_the_cost_comment_previews_the_base_branch_and_the_head_side_by_side() -> None:
    job = cost_job()
    checkouts = {step["with"]["path"]: step["with"] for step in steps_using(job, "actions/checkout")}
    assert set(checkouts) == {"base", "head"}
    assert checkouts["base"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert "ref" not in checkouts["head"]  # the pull request's merge commit, as checks.yml sees it
    script = next(step["run"] for step in job["steps"] if "tools.preview " in step.get("run", ""))
    assert (
        "(cd base && python -m tools.preview " in script and "(cd head && python -m tools.preview " in script
    )
    post = only_step_using(job, "actions/github-script")
    assert index_of(job, step_running(job, "tools.preview.comment")) < index_of(job, post)


def step_running(job: dict[str, Any], text: str) -> dict[str, Any]:
    return next(step for step in job["steps"] if text in step.get("run", ""))


def preview_command_lines(script: str) -> list[list[str]]:
    """The arguments after `python -m tools.preview` on each line that runs the preview, with the
    loop's variables given values (a stack, and the base document for `${against[@]}`)."""
    found = []
    for line in script.splitlines():
        match = re.search(r"python -m tools\.preview (.*?)\)", line)
        if match:
            text = match.group(1).replace('"${against[@]}"', "--cost-baseline base.json")
            found.append([arg.replace("$stack", "prod") for arg in shlex.split(text)])
    return found


def test_the_cost_comment_command_lines_parse_with_the_previews_own_parser() -> None:
    from tools.preview import cli

    script = step_running(cost_job(), "tools.preview ")["run"]
    base, head = preview_command_lines(script)
    for argv in (base, head):
        args = cli.parse_args(argv)
        assert (args.stack, args.json, args.policy_pack) == ("prod", True, ["policies"])
        assert (ROOT / args.policy_pack[0] / "PulumiPolicy.yaml").is_file()
        assert (ROOT / args.policy_pack_config[0]).is_file()
    assert cli.parse_args(base).cost_baseline is None
    assert cli.parse_args(head).cost_baseline == "base.json"


FAKE_PYTHON = r"""
args = sys.argv[1:]
if args[:2] != ["-m", "tools.preview"]:
    os.execv(REAL, [REAL, *args])
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps([os.path.basename(os.getcwd()), *args]) + "\n")
side, stack = os.path.basename(os.getcwd()), args[args.index("--stack") + 1]
plan = json.loads(os.environ["FAKE_PREVIEWS"]).get(f"{side}:{stack}")
if plan is None or plan[0] == 2:
    sys.exit("error: no such stack" if plan is None else "error: the program failed")
status, baseline, peak = plan
cost = {"currency": "USD", "baselineMonthly": baseline, "peakMonthly": peak, "items": [], "unpriced": []}
if "--cost-baseline" in args:
    with open(args[args.index("--cost-baseline") + 1]) as f:
        before = json.load(f)["cost"]
    cost["change"] = {"changes": [], "notes": []}
    for key in ("baseline", "peak"):
        was, now = before[key + "Monthly"], cost[key + "Monthly"]
        cost["change"].update({key + "Before": was, key + "After": now, key + "Delta": round(now - was, 2)})
print(json.dumps({"project": "wwhd", "stack": stack, "cost": cost}))
sys.exit(status)
"""


def run_cost_step(tmp_path: Path, previews: dict[str, list[float]]) -> tuple[Runner, str]:
    """The preview step of the cost job under bash, in a workspace with `base` and `head`
    checkouts holding stacks dev, prod, new (and one without a policy config), and a fake
    `python` answering `-m tools.preview` from `previews` ("side:stack" -> [exit, baseline, peak])."""
    job = cost_job()
    runner = Runner(tmp_path / "run", job, {})
    for side in ("base", "head"):
        (tmp_path / side / "policies" / "config").mkdir(parents=True)
    for stack in ("dev", "prod", "new", "noconfig"):
        (tmp_path / "head" / f"Pulumi.{stack}.yaml").write_text("config: {}\n")
        if stack != "noconfig":
            (tmp_path / "head" / "policies" / "config" / f"{stack}.json").write_text("{}")
    fake = runner.fakes / "python"
    fake.write_text(f"#!{sys.executable}\nimport json, os, sys\nREAL = {sys.executable!r}\n{FAKE_PYTHON}")
    fake.chmod(0o755)
    summary = tmp_path / "summary.md"
    result = runner.run(
        step_running(job, "tools.preview "),
        cwd=tmp_path,
        FAKE_PREVIEWS=json.dumps(previews),
        GITHUB_STEP_SUMMARY=str(summary),
        PYTHONPATH=str(ROOT),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = (runner.runner_temp / "cost-comment.md").read_text(encoding="utf-8")
    assert summary.read_text(encoding="utf-8") == text
    return runner, text


def test_the_cost_step_compares_each_stack_with_the_base_and_reports_new_and_failed_ones(
    tmp_path: Path,
) -> None:
    from tools.preview.comment import MARKER

    runner, text = run_cost_step(
        tmp_path,
        {
            "base:dev": [0, 50.0, 50.0],
            "head:dev": [0, 52.5, 60.0],
            # A mandatory violation on either side still yields the document.
            "base:prod": [1, 190.0, 340.0],
            "head:prod": [1, 180.0, 340.0],
            "head:new": [0, 10.0, 10.0],
        },
    )
    calls = [
        argv for argv in map(json.loads, runner.log.read_text().splitlines()) if argv[0] in ("base", "head")
    ]
    previewed = {(c[0], c[c.index("--stack") + 1]): c for c in calls}
    assert set(previewed) == {(side, s) for side in ("base", "head") for s in ("dev", "prod", "new")}
    base_doc = str(runner.runner_temp / "base" / "dev.json")
    assert previewed["head", "dev"][-2:] == ["--cost-baseline", base_doc]
    assert "--cost-baseline" not in previewed["head", "new"], "no base document: a new stack"
    assert text.startswith(MARKER + "\n")
    assert "| dev | $50.00 → $52.50 | **+$2.50** | $50.00 → $60.00 | **+$10.00** |" in text
    assert "| prod | $190.00 → $180.00 | **-$10.00** | $340.00 → $340.00 | **±$0.00** |" in text
    assert "| new | $10.00 | new on this branch | $10.00 | new on this branch |" in text
    assert "| **all stacks** | | **-$7.50** | | **+$10.00** |" in text

    _, failed = run_cost_step(tmp_path / "failed", {"base:dev": [0, 50.0, 50.0], "head:dev": [2, 0, 0]})
    assert "| dev | preview failed (see the job log) | | | |" in failed


GITHUB_SCRIPT_HARNESS = r"""
const calls = [];
const existing = JSON.parse(process.env.FAKE_COMMENTS);
const github = {
  paginate: async (method, params) => { calls.push([method, params]); return existing; },
  rest: { issues: {
    listComments: "listComments",
    updateComment: async (params) => calls.push(["updateComment", params]),
    createComment: async (params) => calls.push(["createComment", params]),
  } },
};
const context = { repo: { owner: "acme", repo: "wwhd-infra" }, payload: { pull_request: { number: 42 } } };
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const script = require("fs").readFileSync(process.env.SCRIPT_FILE, "utf8");
new AsyncFunction("require", "github", "context", script)(require, github, context)
  .then(() => console.log(JSON.stringify(calls)));
"""


@pytest.mark.skipif(not shutil.which("node"), reason="node runs the github-script step")
@pytest.mark.parametrize(
    ("comments", "expected"),
    [
        ([], "createComment"),
        ([{"id": 7, "user": {"type": "User"}, "body": "<!-- wwhd-cost-change --> quoted by a person"}], "createComment"),
        ([{"id": 8, "user": {"type": "Bot"}, "body": "pulumi preview output"},
          {"id": 9, "user": {"type": "Bot"}, "body": "<!-- wwhd-cost-change -->\nold"}], "updateComment"),
    ],
    ids=["first-push", "only-a-person-quoted-it", "later-push"],
)  # fmt: skip
def test_the_comment_step_posts_once_then_updates_its_own_comment(
    tmp_path: Path, comments: list[dict[str, Any]], expected: str
) -> None:
    from tools.preview.comment import MARKER

    step = only_step_using(cost_job(), "actions/github-script")
    script = step["with"]["script"]
    assert f'"{MARKER}"' in script
    (tmp_path / "cost-comment.md").write_text(MARKER + "\nthe table\n", encoding="utf-8")
    (tmp_path / "script.js").write_text(script, encoding="utf-8")
    (tmp_path / "harness.js").write_text(GITHUB_SCRIPT_HARNESS, encoding="utf-8")
    result = subprocess.run(
        ["node", str(tmp_path / "harness.js")],
        env={**os.environ, "RUNNER_TEMP": str(tmp_path), "FAKE_COMMENTS": json.dumps(comments),
             "SCRIPT_FILE": str(tmp_path / "script.js")},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    calls = json.loads(result.stdout)
    assert calls[0] == [
        "listComments",
        {"owner": "acme", "repo": "wwhd-infra", "issue_number": 42, "per_page": 100},
    ]
    assert [c[0] for c in calls[1:]] == [expected]
    params = calls[1][1]
    assert params["body"] == MARKER + "\nthe table\n"
    assert params.get("comment_id") == (9 if expected == "updateComment" else None)


# ---------------------------------------------------------------------------------------
# deploy.yml


def test_deploy_runs_on_pushes_to_main_only() -> None:
    assert triggers(load("deploy.yml")) == {"push": {"branches": ["main"]}}


def test_deploy_runs_after_the_checks_in_the_production_environment() -> None:
    jobs = load("deploy.yml")["jobs"]
    assert jobs["checks"]["uses"] == "./.github/workflows/checks.yml"
    needs = jobs["deploy"]["needs"]
    assert "checks" in ([needs] if isinstance(needs, str) else needs)
    environment = jobs["deploy"]["environment"]
    assert (environment["name"] if isinstance(environment, dict) else environment) == "production"


def test_deploy_runs_one_at_a_time_and_is_never_cancelled() -> None:
    workflow = load("deploy.yml")
    assert workflow["jobs"]["deploy"]["concurrency"] == {"group": "deploy-prod", "cancel-in-progress": False}
    assert workflow.get("concurrency", {}).get("cancel-in-progress", False) is False


def test_deploy_updates_prod_with_the_prod_policy_config_then_waits_for_ecs() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    up = pulumi_on_prod(job, "up")
    assert job["env"]["STACK"] == PROD_STACK
    order = [
        index_of(job, step) for step in (up, *(step_with_id(job, i) for i in ("stack", "wait", "verify")))
    ]
    assert order == sorted(order)
    assert "aws ecs wait services-stable" in step_with_id(job, "wait")["run"]


def test_deploy_checks_the_images_platform_before_pulumi_up() -> None:
    job = load("deploy.yml")["jobs"]["deploy"]
    check = step_with_id(job, "image")
    credentials = only_step_using(job, AWS_ACTION)
    assert (
        index_of(job, credentials) < index_of(job, check) < index_of(job, only_step_using(job, PULUMI_ACTION))
    )
    assert check["run"].strip() == "python -m tools.image_platforms check prod"
    install = step_running(job, "pip install")
    assert index_of(job, install) < index_of(job, check)
    assert "-r requirements.txt" in install["run"]


def image_answer(manifest: dict[str, Any], media_type: str) -> dict[str, Any]:
    return {"images": [{"imageManifest": json.dumps(manifest), "imageManifestMediaType": media_type}]}


@pytest.mark.parametrize(
    ("platforms", "passes"), [(["arm64", "amd64"], True), (["arm64"], True), (["amd64"], False)]
)
def test_the_deploys_image_check_passes_only_an_image_with_the_tasks_platform(
    tmp_path: Path, platforms: list[str], passes: bool
) -> None:
    index = {
        **BUILDX_INDEX,
        "manifests": [
            entry for entry in BUILDX_INDEX["manifests"] if entry["platform"]["architecture"] in platforms
        ],
    }
    runner = deploy_runner(tmp_path)
    step = step_with_id(runner.job, "image")
    result = runner.run(
        step, cwd=ROOT, FAKE_ECR=json.dumps({"batch-get-image": image_answer(index, ip.OCI_INDEX)})
    )
    assert (result.returncode == 0) is passes, result.stdout + result.stderr
    (call,) = runner.calls("aws")
    assert call[call.index("--repository-name") + 1] == "wwhd-prod-backend"
    if not passes:
        assert "::error title=API image lacks the task's platform::" in result.stdout
        assert "not linux/arm64" in result.stdout


def test_policy_configs_named_by_pulumi_steps_exist() -> None:
    for _, _, step in every_step():
        if action_of(step) == PULUMI_ACTION and "policyPacks" in step.get("with", {}):
            assert (ROOT / step["with"]["policyPacks"] / "PulumiPolicy.yaml").is_file()
            assert (ROOT / step["with"]["policyPackConfigs"]).is_file()


PROD_OUTPUTS = {
    "clusterName": "wwhd-prod",
    "apiServiceName": "wwhd-api-prod",
    "qdrantServiceName": "wwhd-qdrant-prod",
    "serviceUrl": "https://api.wwhd.ai",
}


def test_the_outputs_the_deploy_reads_are_exported_by_prod(run_stack: RunStack) -> None:
    script = step_with_id(load("deploy.yml")["jobs"]["deploy"], "stack")["run"]
    read = set(re.findall(r'\("[a-z-]+", "(\w+)"\)', script))
    assert read == set(PROD_OUTPUTS)
    exported = run_stack("prod").outputs
    assert read <= set(exported)
    assert exported["qdrantServiceName"], "prod runs Qdrant as its own service: the deploy waits on it"


def deploy_runner(tmp_path: Path) -> Runner:
    return Runner(
        tmp_path,
        load("deploy.yml")["jobs"]["deploy"],
        {"vars.PULUMI_ORG": "acme", "secrets.PULUMI_ACCESS_TOKEN": "pul-x"},
    )


@pytest.mark.parametrize(
    ("outputs", "services"),
    [
        (PROD_OUTPUTS, ["wwhd-api-prod", "wwhd-qdrant-prod"]),
        (PROD_OUTPUTS | {"qdrantServiceName": None}, ["wwhd-api-prod"]),
        ({k: v for k, v in PROD_OUTPUTS.items() if k != "qdrantServiceName"}, ["wwhd-api-prod"]),
    ],
    ids=["qdrant-service", "qdrant-null", "qdrant-absent"],
)
def test_deploy_waits_for_the_services_named_by_the_stack_outputs(
    tmp_path: Path, outputs: dict[str, Any], services: list[str]
) -> None:
    runner = deploy_runner(tmp_path)
    job = runner.job
    read = runner.run(step_with_id(job, "stack"), FAKE_STACK_OUTPUTS=json.dumps(outputs))
    assert read.returncode == 0, read.stderr
    assert runner.calls("pulumi") == [["stack", "output", "--stack", "acme/prod", "--json"]]
    assert runner.context["steps.stack.outputs.service-url"] == "https://api.wwhd.ai"

    wait = runner.run(step_with_id(job, "wait"))
    assert wait.returncode == 0, wait.stdout + wait.stderr
    assert runner.calls("aws") == [
        ["ecs", "wait", "services-stable", "--cluster", "wwhd-prod", "--services", *services]
    ]


def test_deploy_waits_three_turns_then_fails(tmp_path: Path) -> None:
    runner = deploy_runner(tmp_path / "slow")
    runner.run(step_with_id(runner.job, "stack"), FAKE_STACK_OUTPUTS=json.dumps(PROD_OUTPUTS))
    assert runner.run(step_with_id(runner.job, "wait"), FAKE_WAIT_EXITS="255,0").returncode == 0
    assert len(runner.calls("aws")) == 2

    runner = deploy_runner(tmp_path / "stuck")
    runner.run(step_with_id(runner.job, "stack"), FAKE_STACK_OUTPUTS=json.dumps(PROD_OUTPUTS))
    stuck = runner.run(step_with_id(runner.job, "wait"), FAKE_WAIT_EXITS="255")
    assert stuck.returncode != 0
    assert len(runner.calls("aws")) == 3


def test_deploy_fails_without_a_cluster_output(tmp_path: Path) -> None:
    runner = deploy_runner(tmp_path)
    runner.run(step_with_id(runner.job, "stack"), FAKE_STACK_OUTPUTS=json.dumps({"serviceUrl": "x"}))
    assert runner.run(step_with_id(runner.job, "wait")).returncode != 0
    assert runner.calls("aws") == []


def state_with_services(*services: tuple[str, str]) -> str:
    cluster = "arn:aws:ecs:us-west-2:123456789012:cluster/wwhd-prod"
    resources = [{"type": "pulumi:pulumi:Stack", "urn": "stack", "outputs": {}}]
    for name, task_definition in services:
        outputs = {"cluster": cluster, "name": name, "taskDefinition": task_definition}
        resources.append({"type": "aws:ecs/service:Service", "urn": name, "outputs": outputs})
    # A service Pulumi is about to delete (replaced) does not count.
    resources.append(
        {
            "type": "aws:ecs/service:Service",
            "urn": "old",
            "delete": True,
            "outputs": {"cluster": cluster, "name": "old", "taskDefinition": "td/old:1"},
        }
    )
    return json.dumps({"version": 3, "deployment": {"resources": resources}})


API_NEW = "arn:aws:ecs:us-west-2:123456789012:task-definition/wwhd-api:8"
QDRANT = "arn:aws:ecs:us-west-2:123456789012:task-definition/wwhd-qdrant:3"


def test_deploy_passes_when_ecs_runs_what_pulumi_deployed(tmp_path: Path) -> None:
    runner = deploy_runner(tmp_path)
    result = runner.run(
        step_with_id(runner.job, "verify"),
        FAKE_STATE=state_with_services(("wwhd-api-prod", API_NEW), ("wwhd-qdrant-prod", QDRANT)),
        FAKE_RUNNING=json.dumps({"wwhd-api-prod": API_NEW, "wwhd-qdrant-prod": QDRANT}),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert runner.calls("pulumi")[0][:4] == ["stack", "export", "--stack", "acme/prod"]
    described = sorted(call[call.index("--services") + 1] for call in runner.calls("aws"))
    assert described == ["wwhd-api-prod", "wwhd-qdrant-prod"]


def test_deploy_fails_when_the_circuit_breaker_rolled_back(tmp_path: Path) -> None:
    runner = deploy_runner(tmp_path)
    result = runner.run(
        step_with_id(runner.job, "verify"),
        FAKE_STATE=state_with_services(("wwhd-api-prod", API_NEW), ("wwhd-qdrant-prod", QDRANT)),
        FAKE_RUNNING=json.dumps({"wwhd-api-prod": API_NEW.replace(":8", ":7"), "wwhd-qdrant-prod": QDRANT}),
    )
    assert result.returncode != 0
    assert "::error" in result.stdout and "wwhd-api-prod" in result.stdout


def test_deploy_fails_when_the_state_holds_no_service(tmp_path: Path) -> None:
    runner = deploy_runner(tmp_path)
    result = runner.run(
        step_with_id(runner.job, "verify"), FAKE_STATE=state_with_services(), FAKE_RUNNING="{}"
    )
    assert result.returncode != 0


# ---------------------------------------------------------------------------------------
# policy.yml


def test_policy_publishes_on_version_tags_only() -> None:
    assert triggers(load("policy.yml")) == {"push": {"tags": ["policy-v*"]}}


def test_policy_publishes_after_checks_with_the_pulumi_token_only() -> None:
    workflow = load("policy.yml")
    publish = workflow["jobs"]["publish"]
    assert workflow["jobs"]["checks"]["uses"] == "./.github/workflows/checks.yml"
    assert "checks" in publish["needs"]
    assert not steps_using(publish, AWS_ACTION)
    step = next(s for s in publish["steps"] if "pulumi policy publish" in s.get("run", ""))
    assert step["working-directory"] == "policies"
    assert step["run"].strip() == 'pulumi policy publish "$PULUMI_ORG"'
    assert step["env"] == {"PULUMI_ACCESS_TOKEN": TOKEN, "PULUMI_ORG": "${{ vars.PULUMI_ORG }}"}
    # Only the CLI is installed: no command runs against a stack.
    assert "with" not in only_step_using(publish, PULUMI_ACTION)
    assert index_of(publish, step_with_id(publish, "version")) < index_of(publish, step)


def pack_version() -> str:
    return str(
        yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text(encoding="utf-8"))["version"]
    )


@pytest.mark.parametrize(
    ("pulumi_policy_yaml", "tag", "accepted"),
    [
        (None, f"policy-v{pack_version()}", True),
        (None, "policy-v9.9.9", False),
        (None, "policy-vlatest", False),
        ('runtime: python\nversion: "1.2.3"  # released\n', "policy-v1.2.3", True),
        ("runtime: python\nversion: '1.2.3'\n", "policy-v1.2.4", False),
        ("runtime: python\n", "policy-v1.2.3", False),
    ],
    ids=[
        "real-pack-matching",
        "real-pack-other",
        "not-semver",
        "quoted-commented",
        "single-quoted-other",
        "no-version",
    ],
)
def test_policy_tag_must_name_the_pack_version(
    tmp_path: Path, pulumi_policy_yaml: str | None, tag: str, accepted: bool
) -> None:
    source = ROOT / "policies" / "PulumiPolicy.yaml"
    (tmp_path / "policies").mkdir()
    text = source.read_text(encoding="utf-8") if pulumi_policy_yaml is None else pulumi_policy_yaml
    (tmp_path / "policies" / "PulumiPolicy.yaml").write_text(text, encoding="utf-8")
    publish = load("policy.yml")["jobs"]["publish"]
    runner = Runner(tmp_path / "run", publish, {"github.ref_name": tag})
    result = runner.run(step_with_id(publish, "version"), cwd=tmp_path)
    assert (result.returncode == 0) is accepted, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------
# image.yml


def image_job() -> dict[str, Any]:
    return load("image.yml")["jobs"]["image"]


def test_the_image_is_built_on_request_for_a_stack_tag_and_app_ref() -> None:
    assert set(triggers(load("image.yml"))) == {"workflow_dispatch"}
    inputs = triggers(load("image.yml"))["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"stack", "tag", "app-ref"}
    stacks = sorted(
        path.name.removeprefix("Pulumi.").removesuffix(".yaml") for path in ROOT.glob("Pulumi.*.yaml")
    )
    assert sorted(inputs["stack"]["options"]) == stacks
    assert inputs["tag"]["required"] is True


def test_the_image_is_built_for_both_architectures_and_pushed_as_one_index() -> None:
    job = image_job()
    qemu = only_step_using(job, "docker/setup-qemu-action")
    buildx = only_step_using(job, "docker/setup-buildx-action")
    build = only_step_using(job, "docker/build-push-action")
    assert index_of(job, qemu) < index_of(job, buildx) < index_of(job, build)
    assert "arm64" in qemu["with"]["platforms"]
    assert build["with"]["platforms"].split(",") == ["linux/arm64", "linux/amd64"]
    assert build["with"]["push"] is True
    assert build["with"]["tags"] == "${{ steps.repository.outputs.url }}:${{ inputs.tag }}"
    app = [step for step in steps_using(job, "actions/checkout") if "repository" in step.get("with", {})]
    assert [step["with"]["repository"] for step in app] == ["${{ vars.APP_REPOSITORY }}"]
    assert app[0]["with"]["ref"] == "${{ inputs.app-ref }}"
    assert build["with"]["context"] == app[0]["with"]["path"]
    # The role cannot pull layers: the build cache is the runner's, not the registry's.
    assert "type=registry" not in json.dumps(build["with"])


def test_the_pushed_image_is_checked_for_both_platforms_and_its_digest_printed() -> None:
    job = image_job()
    build = only_step_using(job, "docker/build-push-action")
    check = step_running(job, "tools.image_platforms check")
    assert index_of(job, build) < index_of(job, check)
    command = next(line for line in check["run"].splitlines() if "image_platforms check" in line)
    assert shlex.split(command)[3:] == [
        "check", "$STACK", "--tag", "$TAG", "--platform", "linux/arm64", "--platform", "linux/amd64"
    ]  # fmt: skip
    assert check["env"]["DIGEST"] == "${{ steps.build.outputs.digest }}"
    assert "$DIGEST" in check["run"]


def test_the_image_jobs_session_outlasts_it() -> None:
    from wwhd_bootstrap.trust import IMAGE_MAX_SESSION_SECONDS

    job = image_job()
    assert "role-duration-seconds" not in only_step_using(job, AWS_ACTION)["with"]  # one hour
    assert job["timeout-minutes"] * 60 < IMAGE_MAX_SESSION_SECONDS


def test_the_image_target_step_names_the_stacks_repository_and_region(tmp_path: Path) -> None:
    job = image_job()
    runner = Runner(tmp_path, job, {"inputs.stack": "prod", "inputs.tag": "v2.0.0"})
    result = runner.run(step_with_id(job, "target"), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert runner.context["steps.target.outputs.repository"] == "wwhd-prod-backend"
    assert runner.context["steps.target.outputs.region"] == "us-west-2"


def run_repository_step(
    tmp_path: Path, tag: str, ecr: dict[str, Any]
) -> tuple[Runner, subprocess.CompletedProcess[str]]:
    job = image_job()
    runner = Runner(
        tmp_path,
        job,
        {"inputs.stack": "prod", "inputs.tag": tag, "steps.target.outputs.repository": "wwhd-prod-backend"},
    )
    return runner, runner.run(step_with_id(job, "repository"), FAKE_ECR=json.dumps(ecr))


REPOSITORY_URI = "123456789012.dkr.ecr.us-west-2.amazonaws.com/wwhd-prod-backend"
EXISTS = {"repositories": [{"repositoryUri": REPOSITORY_URI}]}
NO_IMAGE = "An error occurred (ImageNotFoundException) when calling the DescribeImages operation"


def test_a_new_tag_goes_to_the_stacks_repository(tmp_path: Path) -> None:
    runner, result = run_repository_step(
        tmp_path, "v2.0.0", {"describe-repositories": EXISTS, "describe-images": NO_IMAGE}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert runner.context["steps.repository.outputs.url"] == REPOSITORY_URI
    describe = runner.calls("aws")[1]
    assert describe[describe.index("--image-ids") + 1] == "imageTag=v2.0.0"


@pytest.mark.parametrize(
    ("tag", "ecr", "message"),
    [
        ("v0.1.0", {"describe-repositories": EXISTS, "describe-images": {"imageDetails": [{}]}}, "Tag taken"),
        ("v2.0.0", {"describe-repositories": "RepositoryNotFoundException"}, "No repository"),
        (
            "v2.0.0",
            {"describe-repositories": EXISTS, "describe-images": "AccessDeniedException"},
            "could not tell",
        ),
        ("sha256:" + "a" * 64, {}, "Not a tag"),
    ],
)
def test_the_image_is_not_built_when_it_cannot_be_pushed(
    tmp_path: Path, tag: str, ecr: dict[str, Any], message: str
) -> None:
    _, result = run_repository_step(tmp_path, tag, ecr)
    assert result.returncode != 0
    assert message in result.stdout
