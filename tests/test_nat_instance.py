"""WwhdNatInstance: the instance translates and nothing else reaches it; every private subnet's
default route leads to its interface and takes over awsx's gateway route; the boot script, run
against stand-ins for Amazon Linux's tools and (where the machine allows) against the kernel's
own nftables in network namespaces, forwards and masquerades the VPC's traffic."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pulumi_awsx as awsx
import pytest

from components.container_host import session_manager_statements
from components.nat_instance import (
    AMI_PARAMETERS,
    NFT_TABLE,
    UNIT_NAME,
    NatPaths,
    WwhdNatInstanceArgs,
    awsx_gateway_route_urn,
    setup_script,
    sysctl_conf,
    unit_file,
    user_data,
)
from components.network import WwhdNetwork, WwhdNetworkArgs
from stack_config import NetworkConfig
from tests.conftest import RunStack
from tests.policies.conftest import iam_document_findings
from tests.support import (
    BOUNDARY,
    EC2_INSTANCE,
    GET_PARAMETER,
    GET_ROUTE_TABLE,
    INSTANCE_PROFILE,
    ROLE,
    ROLE_POLICY,
    ROUTE,
    SECURITY_GROUP,
    instance_role,
)
from tools.mocks import (
    ACCOUNT_ID,
    RecordingMocks,
    RecordingMonitor,
    install_mocks,
    is_unknown,
    resolve,
    settle,
)

REGION = "us-west-2"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT_ID}:key/test"
CIDR = "10.0.0.0/16"


def build(monitor: RecordingMonitor, **config: Any) -> tuple[WwhdNetwork, dict[str, list[str]]]:
    """The network with ``natGateways: instance``; returns it and the aliases of each resource
    registered (by name), which ``MockResourceArgs`` does not carry."""
    aliases: dict[str, list[str]] = {}
    register = monitor.RegisterResource

    def recording(request: Any) -> Any:
        aliases[request.name] = [alias.urn for alias in request.aliases]
        return register(request)

    monitor.RegisterResource = recording  # type: ignore[method-assign]
    net = WwhdNetwork(
        "wwhd",
        WwhdNetworkArgs(
            config=NetworkConfig(nat_gateways="instance", **config),
            region=REGION,
            key_arn=KEY,
            permissions_boundary=BOUNDARY,
        ),
    )
    settle()
    return net, aliases


def lookups(monitor: RecordingMonitor, token: str) -> list[dict[str, Any]]:
    return [call for t, call in monitor.mocks.calls if t == token]  # type: ignore[attr-defined]


# --- the instance ----------------------------------------------------------------------------------


def test_instance_is_a_keyless_imdsv2_translator_in_the_first_public_subnet(mocks: RecordingMonitor) -> None:
    build(mocks)
    i = mocks.one(EC2_INSTANCE).inputs
    assert i["subnetId"] == mocks.one("awsx:ec2:Vpc").outputs["publicSubnetIds"][0]
    assert i["associatePublicIpAddress"] is True
    assert i["sourceDestCheck"] is False
    assert "keyName" not in i
    assert i["metadataOptions"]["httpTokens"] == "required"
    assert i["metadataOptions"]["httpPutResponseHopLimit"] == 1
    assert i["rootBlockDevice"]["encrypted"] is True and i["rootBlockDevice"]["volumeType"] == "gp3"
    assert i["maintenanceOptions"] == {"autoRecovery": "default"}
    assert i["instanceType"] == "t4g.nano"
    assert i["creditSpecification"] == {"cpuCredits": "standard"}
    assert i["vpcSecurityGroupIds"] == [mocks.one(SECURITY_GROUP, "wwhd-nat").outputs["id"]]
    assert i["iamInstanceProfile"] == mocks.one(INSTANCE_PROFILE).outputs["name"]
    # A changed script reaches the instance only through a new instance (cloud-init runs once).
    assert i["userData"] == user_data(CIDR) and i["userDataReplaceOnChange"] is True


@pytest.mark.parametrize(("instance_type", "architecture"), [("t4g.nano", "arm64"), ("t3.micro", "x86_64")])
def test_image_is_standard_al2023_of_the_types_architecture(
    mocks: RecordingMonitor, instance_type: str, architecture: str
) -> None:
    build(mocks, nat_instance_type=instance_type)
    (asked,) = lookups(mocks, GET_PARAMETER)
    assert asked["name"] == AMI_PARAMETERS[architecture]  # type: ignore[index]
    assert "al2023-ami-kernel-default" in asked["name"] and "minimal" not in asked["name"]
    stand_in = mocks.mocks.stand_ins[GET_PARAMETER][0]["value"]  # type: ignore[attr-defined]
    assert mocks.one(EC2_INSTANCE).inputs["ami"] == stand_in


def test_only_burstable_types_get_a_credit_specification(mocks: RecordingMonitor) -> None:
    build(mocks, nat_instance_type="m7g.medium")
    assert "creditSpecification" not in mocks.one(EC2_INSTANCE).inputs


def test_role_carries_the_boundary_and_may_only_run_session_manager(mocks: RecordingMonitor) -> None:
    build(mocks)
    instance_role(mocks, "wwhd-nat", BOUNDARY)
    policy = json.loads(mocks.one(ROLE_POLICY).inputs["policy"])
    assert policy["Statement"] == session_manager_statements(account=ACCOUNT_ID, region=REGION)
    # The agent must find its policy at first boot.
    assert mocks.one(ROLE_POLICY).urn in mocks.one(EC2_INSTANCE).dependencies


def test_role_policy_passes_the_packs_iam_policies(mocks: RecordingMonitor) -> None:
    build(mocks)
    assert iam_document_findings(ROLE_POLICY, mocks.one(ROLE_POLICY).inputs) == {}


# --- the routes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("azs", [2, 3])
def test_each_private_subnet_routes_everything_to_the_instance(mocks: RecordingMonitor, azs: int) -> None:
    build(mocks, availability_zones=azs)
    private = mocks.one("awsx:ec2:Vpc").outputs["privateSubnetIds"]
    assert [call["subnetId"] for call in lookups(mocks, GET_ROUTE_TABLE)] == private
    tables = [answer["routeTableId"] for answer in mocks.mocks.stand_ins[GET_ROUTE_TABLE]]  # type: ignore[attr-defined]
    routes = mocks.of_type(ROUTE)
    assert [r.name for r in routes] == [f"wwhd-nat-private-{n}" for n in range(1, azs + 1)]
    eni = mocks.one(EC2_INSTANCE).outputs["primaryNetworkInterfaceId"]
    assert eni.startswith("eni-")
    for route, table in zip(routes, tables, strict=True):
        assert route.inputs == {
            "routeTableId": table,
            "destinationCidrBlock": "0.0.0.0/0",
            "networkInterfaceId": eni,
        }
        assert mocks.one(EC2_INSTANCE).urn in route.property_dependencies["networkInterfaceId"]


def test_each_route_takes_over_the_gateway_route_awsx_made_in_its_table(mocks: RecordingMonitor) -> None:
    _, aliases = build(mocks)
    vpc = mocks.one("awsx:ec2:Vpc").urn
    for n in (1, 2):
        assert aliases[f"wwhd-nat-private-{n}"] == [awsx_gateway_route_urn(vpc, n)]


def test_a_new_stacks_preview_registers_every_route_without_looking_tables_up() -> None:
    """Before the VPC exists its subnet ids are unknown: the look-ups are skipped and each route
    is registered with its table unknown, so the program (and the pack) still decide."""
    monitor = install_mocks(RecordingMocks(new_stack=True), project="wwhd", stack="test")
    pulumi.runtime.set_all_config({}, [])
    build(monitor)
    assert lookups(monitor, GET_ROUTE_TABLE) == []
    routes = monitor.of_type(ROUTE)
    assert len(routes) == 2
    for route in routes:
        assert (
            is_unknown(route.inputs["routeTableId"]) and route.inputs["destinationCidrBlock"] == "0.0.0.0/0"
        )
    assert monitor.one(EC2_INSTANCE).inputs["sourceDestCheck"] is False


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"instance_type": "nano"}, "instance_type: 'nano' is not an EC2 instance type"),
        ({"instance_type": "a1.medium"}, "Amazon Linux 2023 does not run on a1 instances"),
        ({"vpc_cidr": "10.0.0.1/16"}, "vpc_cidr: '10.0.0.1/16' is not an IPv4 network"),
        ({"private_subnet_count": 0}, "private_subnet_count: at least 1, not 0"),
    ],
)
def test_args_refuse_what_the_instance_cannot_take(
    mocks: RecordingMonitor, overrides: dict[str, Any], expected: str
) -> None:
    values: dict[str, Any] = {
        "vpc": awsx.ec2.Vpc("v"),
        "vpc_cidr": CIDR,
        "private_subnet_count": 2,
        "security_group_id": "sg-0123456789abcdef0",
        "region": REGION,
    }
    with pytest.raises(ValueError, match="invalid WwhdNatInstanceArgs") as info:
        WwhdNatInstanceArgs(**(values | overrides))
    assert expected in str(info.value)


def test_gateway_route_urn_follows_awsx_parent_chain() -> None:
    vpc = "urn:pulumi:dev::wwhd::wwhd:index:WwhdNetwork$awsx:ec2:Vpc::wwhd-vpc"
    assert awsx_gateway_route_urn(vpc, 2) == (
        "urn:pulumi:dev::wwhd::wwhd:index:WwhdNetwork$awsx:ec2:Vpc$aws:ec2/vpc:Vpc$aws:ec2/subnet:Subnet"
        "$aws:ec2/routeTable:RouteTable$aws:ec2/route:Route::wwhd-vpc-private-2"
    )


def test_outputs_and_parents(mocks: RecordingMonitor) -> None:
    net, _ = build(mocks)
    instance = mocks.one(EC2_INSTANCE)
    assert resolve(net.nat_instance_id) == instance.outputs["id"]
    component = mocks.one("wwhd:index:WwhdNatInstance")
    assert component.parent == mocks.one("wwhd:index:WwhdNetwork").urn
    for r in (
        instance,
        *mocks.of_type(ROUTE),
        mocks.one(ROLE),
        mocks.one(INSTANCE_PROFILE),
        mocks.one(ROLE_POLICY),
    ):
        assert r.parent == component.urn, r.name


def test_dev_program_builds_the_nat_instance_instead_of_a_gateway(run_stack: RunStack) -> None:
    run = run_stack("dev", merge=True, network={"natGateways": "instance"})
    assert run.monitor.one("awsx:ec2:Vpc").inputs["natGateways"] == {"strategy": "None"}
    assert run.monitor.one(EC2_INSTANCE).inputs["sourceDestCheck"] is False
    assert len(run.monitor.of_type(ROUTE)) == 2


# --- the boot script, rendered ---------------------------------------------------------------------


def test_scripts_parse() -> None:
    for script in (user_data(CIDR), setup_script(CIDR)):
        subprocess.run(["bash", "-n"], input=script, text=True, check=True)


def test_rendered_script_enables_forwarding_and_masquerades_the_vpc_range() -> None:
    assert "net.ipv4.ip_forward = 1\n" in sysctl_conf()
    setup = setup_script("10.8.0.0/16")
    assert "VPC_CIDR=10.8.0.0/16\n" in setup
    assert 'oifname "$IFACE" ip saddr $VPC_CIDR ip daddr != $VPC_CIDR masquerade' in setup
    assert "type filter hook forward priority filter; policy drop;" in setup
    unit = unit_file()
    assert "ExecStart=/usr/local/sbin/wwhd-nat\n" in unit and "WantedBy=multi-user.target\n" in unit
    assert "Restart=on-failure\n" in unit and "StartLimitIntervalSec=0\n" in unit


# Stand-ins for what the scripts call on Amazon Linux 2023. Each records its arguments in
# $STATE/calls; `systemctl enable --now` runs the setup as systemd would, `nft -f -` keeps the
# ruleset it was given, `sysctl -p` applies the file's forwarding setting.
STUBS = {
    "systemctl": """if [ "$1" = enable ]; then "$SETUP_FILE"; fi""",
    "sysctl": """case "$*" in
                   *-p*) grep -q 'ip_forward = 1' "${@: -1}" && echo 1 > "$STATE/forwarding" ;;
                   *-n*) cat "$STATE/forwarding" 2> /dev/null || echo 0 ;;
                 esac""",
    "ip": """cat "$STATE/routes" """,
    "nft": """cat > "$STATE/ruleset" """,
    "dnf": """cp "$BIN/nft.pkg" "$BIN/nft" """,
}
DEFAULT_ROUTE = "default via 10.0.0.1 dev ens5 proto dhcp src 10.0.0.12 metric 512\n"


def run_boot(
    tmp_path: Path, routes: str = DEFAULT_ROUTE, nft_installed: bool = True
) -> tuple[subprocess.CompletedProcess[str], Path]:
    state, bin_dir = tmp_path / "state", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    (state / "routes").write_text(routes)
    for name, body in STUBS.items():
        tool = bin_dir / (name if name != "nft" or nft_installed else "nft.pkg")
        tool.write_text(f'#!/bin/bash\necho "{name} $*" >> "$STATE/calls"\n{textwrap.dedent(body)}\n')
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    paths = NatPaths(
        sysctl=str(state / "sysctl.conf"), setup=str(state / "wwhd-nat"), unit=str(state / UNIT_NAME)
    )
    # No system directory holding a real nft (sbin) on the path: the stand-ins decide.
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "STATE": str(state),
        "BIN": str(bin_dir),
        "SETUP_FILE": paths.setup,
    }
    done = subprocess.run(
        ["bash", "-c", user_data(CIDR, paths)], env=env, text=True, capture_output=True, timeout=60
    )
    return done, state


def calls(state: Path) -> list[str]:
    return (state / "calls").read_text().splitlines()


@pytest.mark.parametrize("routes", [DEFAULT_ROUTE, "default dev ens5 scope link\n"])
def test_boot_installs_the_setup_for_every_boot_and_runs_it(tmp_path: Path, routes: str) -> None:
    done, state = run_boot(tmp_path, routes)
    assert done.returncode == 0, done.stderr
    assert (state / "sysctl.conf").read_text() == sysctl_conf()
    setup = state / "wwhd-nat"
    assert setup.read_text() == setup_script(CIDR, NatPaths(sysctl=str(state / "sysctl.conf")))
    assert setup.stat().st_mode & stat.S_IXUSR
    assert (state / UNIT_NAME).read_text() == unit_file(NatPaths(setup=str(setup)))
    made = calls(state)
    assert made.index("systemctl daemon-reload") < made.index(f"systemctl enable --now {UNIT_NAME}")
    assert not any(c.startswith("dnf") for c in made)
    ruleset = (state / "ruleset").read_text()
    assert f"table ip {NFT_TABLE}\ndelete table ip {NFT_TABLE}\n" in ruleset
    assert f'oifname "ens5" ip saddr {CIDR} ip daddr != {CIDR} masquerade' in ruleset
    assert f'iifname "ens5" ip saddr {CIDR} ip daddr != {CIDR} accept' in ruleset
    assert f"forwarding {CIDR} out of ens5" in done.stdout


def test_setup_installs_nftables_when_the_image_lacks_it(tmp_path: Path) -> None:
    done, state = run_boot(tmp_path, nft_installed=False)
    assert done.returncode == 0, done.stderr
    made = calls(state)
    assert "dnf install -y nftables" in made
    assert made.index("dnf install -y nftables") < next(i for i, c in enumerate(made) if c.startswith("nft"))


def test_setup_fails_without_a_default_route_and_translates_nothing(tmp_path: Path) -> None:
    done, state = run_boot(tmp_path, routes="")
    assert done.returncode != 0
    assert "no default route yet" in done.stderr
    assert not (state / "ruleset").exists()


# --- the boot script against the kernel ------------------------------------------------------------
#
# A VPC in miniature, in network namespaces made for the test and removed after it: a "router"
# (the VPC's implicit router, sending the private subnet's default route to the NAT instance, as
# the route table does), a "task" in a private subnet, the "nat" instance with one interface in a
# public subnet, and a host on the "internet" (TEST-NET-2). Nothing leaves the namespaces.

NETNS_READY = os.geteuid() == 0 and shutil.which("nft") is not None and shutil.which("ip") is not None
TASK_IP, NAT_IP, INTERNET_IP = "10.0.1.5", "10.0.0.10", "198.51.100.10"
PORT = 8443


@pytest.fixture
def vpc(tmp_path: Path) -> Iterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:6]
    ns = {role: f"wwhd-{role}-{tag}" for role in ("router", "task", "nat", "internet")}

    def sh(*commands: str) -> None:
        for command in commands:
            subprocess.run(command.split(), check=True, capture_output=True, timeout=10)

    try:
        for name in ns.values():
            sh(f"ip netns add {name}")
        links = (("task", "10.0.1.1/24", f"{TASK_IP}/24"), ("nat", "10.0.0.1/24", f"{NAT_IP}/24"),
                 ("internet", "198.51.100.1/24", f"{INTERNET_IP}/24"))  # fmt: skip
        for role, router_side, far_side in links:
            far = "ens5" if role == "nat" else "eth0"
            sh(
                f"ip link add r{role[0]}{tag} netns {ns['router']} type veth peer name {far} netns {ns[role]}",
                f"ip -n {ns['router']} addr add {router_side} dev r{role[0]}{tag}",
                f"ip -n {ns['router']} link set r{role[0]}{tag} up",
                f"ip -n {ns[role]} addr add {far_side} dev {far}",
                f"ip -n {ns[role]} link set {far} up",
                f"ip -n {ns[role]} link set lo up",
                f"ip -n {ns[role]} route add default via {router_side.split('/')[0]}",
            )
        # The private subnet's route table: everything it sends goes to the NAT instance. What
        # the internet sends is routed there too, so the instance's own filter decides whether
        # anything unsolicited gets in (on AWS a private address is not reachable at all).
        sh(
            f"ip netns exec {ns['router']} sysctl -q -w net.ipv4.ip_forward=1",
            f"ip -n {ns['router']} rule add iif rt{tag} lookup 100",
            f"ip -n {ns['router']} rule add iif ri{tag} lookup 100",
            f"ip -n {ns['router']} route add default via {NAT_IP} table 100",
        )
        yield ns
    finally:
        for name in ns.values():
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def connect(ns: dict[str, str], source: str, target_ip: str) -> str | None:
    """Open a TCP connection from one namespace to a listener in another; the listener answers
    with the peer address it saw. None when no connection was made."""
    server = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns[_role_of(target_ip)],
            sys.executable,
            "-c",
            _LISTENER,
            target_ip,
            str(PORT),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        client = subprocess.run(
            ["ip", "netns", "exec", ns[source], sys.executable, "-c", _CLIENT, target_ip, str(PORT)],
            capture_output=True,
            text=True,
            timeout=15,
        )
        return client.stdout.strip() or None
    finally:
        server.kill()
        server.wait(timeout=5)


def _role_of(ip: str) -> str:
    return {INTERNET_IP: "internet", TASK_IP: "task"}[ip]


_LISTENER = """
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(10)
print("ready", flush=True)
conn, peer = s.accept(); conn.sendall(peer[0].encode()); conn.close()
"""
_CLIENT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as c:
        print(c.recv(64).decode())
except OSError:
    pass
"""


def run_setup_in(ns: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    sysctl_file = tmp_path / "90-wwhd-nat.conf"
    sysctl_file.write_text(sysctl_conf())
    script = setup_script(CIDR, NatPaths(sysctl=str(sysctl_file)))
    return subprocess.run(
        ["ip", "netns", "exec", ns, "bash", "-c", script], capture_output=True, text=True, timeout=30
    )


@pytest.mark.skipif(not NETNS_READY, reason="needs root, iproute2 and nft (Debian package nftables)")
def test_the_kernel_translates_the_vpcs_connections_after_setup(vpc: dict[str, str], tmp_path: Path) -> None:
    # Before the setup the instance forwards nothing: the check below can fail.
    assert connect(vpc, "task", INTERNET_IP) is None
    done = run_setup_in(vpc["nat"], tmp_path)
    assert done.returncode == 0, done.stderr
    # The internet sees the NAT instance's address, not the task's.
    assert connect(vpc, "task", INTERNET_IP) == NAT_IP
    # Nothing from the internet is forwarded into the VPC.
    assert connect(vpc, "internet", TASK_IP) is None
    # Running the setup again (a restart of the unit) keeps one table, still translating.
    assert run_setup_in(vpc["nat"], tmp_path).returncode == 0
    tables = subprocess.run(
        ["ip", "netns", "exec", vpc["nat"], "nft", "list", "tables"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert tables.stdout.split("\n").count(f"table ip {NFT_TABLE}") == 1
    assert connect(vpc, "task", INTERNET_IP) == NAT_IP
