// One run of the anchor: what a CDK team's pre-merge check does for the prod app, in this one
// fresh process. Build the app, apply cdk-nag's AwsSolutions pack as an Aspect, synthesize the
// template (app.synth(): the CDK CLI adds only process plumbing around it), then validate the
// template with cfn-lint, AWS's CloudFormation linter, as its own process.
//
//   node run.js      prints one JSON line: resources, findings and the seconds of each step
//
// Findings of either checker are figures, not failures (exit 0); exit 1 means the anchor did
// not run (a synthesis error, cfn-lint missing or crashing). CFN_LINT names the cfn-lint
// executable (default: the one in this folder's .venv, which `make anchor` installs).
"use strict";

const started = process.hrtime.bigint();
const seconds = (from) => Number(process.hrtime.bigint() - from) / 1e9;

const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");
const { Aspects } = require("aws-cdk-lib");
const { AwsSolutionsChecks } = require("cdk-nag");
const { buildApp, STACK_ID } = require("./app");

const OUTDIR = path.join(__dirname, "cdk.out");
const CFN_LINT = process.env.CFN_LINT || path.join(__dirname, ".venv", "bin", "cfn-lint");
const REGION = "us-west-2";

function version(pkg) {
  return JSON.parse(fs.readFileSync(require.resolve(`${pkg}/package.json`), "utf8")).version;
}

function main() {
  fs.rmSync(OUTDIR, { recursive: true, force: true }); // a stale assembly must not be linted
  const app = buildApp(OUTDIR);
  Aspects.of(app).add(new AwsSolutionsChecks());
  const stack = app.synth().getStackArtifact(STACK_ID);
  const synth = seconds(started);

  const resources = Object.keys(stack.template.Resources).length;
  // cdk-nag reports through construct annotations: an error or a warning per rule and resource.
  const nag = { error: 0, warning: 0 };
  for (const message of stack.messages) {
    if (String(message.entry.data).startsWith("AwsSolutions-") && message.level in nag) {
      nag[message.level] += 1;
    }
  }

  const linting = process.hrtime.bigint();
  const templateFile = path.join(OUTDIR, stack.templateFile);
  const lint = spawnSync(CFN_LINT, ["--format", "json", "--regions", REGION, "--", templateFile], {
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
  });
  const lintSeconds = seconds(linting);
  if (lint.error) {
    throw new Error(`cfn-lint did not start (${CFN_LINT}): ${lint.error.message}`);
  }
  // cfn-lint's exit code is a bit mask of the levels found (2 error, 4 warning, 8 informational);
  // 1 alone means it failed to run.
  let matches;
  try {
    matches = JSON.parse(lint.stdout);
  } catch {
    throw new Error(`cfn-lint failed (exit ${lint.status}): ${lint.stderr.trim().slice(-500)}`);
  }
  const cfnLint = { error: 0, warning: 0, informational: 0 };
  for (const match of matches) {
    cfnLint[match.Level.toLowerCase()] += 1;
  }

  process.stdout.write(JSON.stringify({
    resources,
    nag,
    cfnLint,
    seconds: { synth, lint: lintSeconds, total: seconds(started) },
    versions: {
      node: process.versions.node,
      "aws-cdk-lib": version("aws-cdk-lib"),
      "cdk-nag": version("cdk-nag"),
    },
  }) + "\n");
}

try {
  main();
} catch (error) {
  process.stderr.write(`anchor: ${error.stack || error}\n`);
  process.exit(1);
}
