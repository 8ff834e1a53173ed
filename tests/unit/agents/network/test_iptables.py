# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The overlay's packet filter rules on a fake ``iptables`` (the integration test runs the real one
in network namespaces)."""

from __future__ import annotations

import pytest

from etcdfleet_agents.network.iptables import (
    FORWARD_CHAIN,
    NAT_CHAIN,
    Iptables,
    IptablesError,
    masquerade_rules,
    overlay_rules,
)


class FakeIptables(object):
    """Chains as lists of rules, answering the commands Iptables runs."""

    def __init__(self):
        self.chains = {('filter', 'FORWARD'): [], ('nat', 'POSTROUTING'): []}
        self.calls = []

    def __call__(self, argv):
        assert argv[:4] == ['iptables', '-w', '5', '-t']
        table, op, chain, rule = argv[4], argv[5], argv[6], argv[7:]
        self.calls.append((table, op, chain))
        key = (table, chain)
        if op == '-N':
            if key in self.chains:
                return 1, 'iptables: Chain already exists.\n'
            self.chains[key] = []
            return 0, ''
        if key not in self.chains:
            return 1, "iptables: No chain/target/match by that name.\n"
        rules = self.chains[key]
        if op == '-S':
            return 0, '-N %s\n' % chain + ''.join('-A %s %s\n' % (chain, ' '.join(r)) for r in rules)
        if op == '-F':
            del rules[:]
        elif op == '-A':
            rules.append(rule)
        elif op == '-C':
            return (0, '') if rule in rules else (1, 'iptables: Bad rule.\n')
        elif op == '-D':
            if rule not in rules:
                return 1, 'iptables: Bad rule.\n'
            rules.remove(rule)
        elif op == '-X':
            del self.chains[key]
        return 0, ''


def test_flannels_masquerading_keeps_the_overlay_s_own_addresses():
    assert masquerade_rules('10.1.0.0/16', '10.1.15.0/24') == [
        ['-s', '10.1.0.0/16', '-d', '10.1.0.0/16', '-j', 'RETURN'],
        ['-s', '10.1.0.0/16', '!', '-d', '224.0.0.0/4', '-j', 'MASQUERADE', '--random-fully'],
        ['!', '-s', '10.1.0.0/16', '-d', '10.1.15.0/24', '-j', 'RETURN'],
        ['!', '-s', '10.1.0.0/16', '-d', '10.1.0.0/16', '-j', 'MASQUERADE', '--random-fully'],
    ]


def test_rules_are_made_once_kept_by_a_restarted_daemon_and_put_back_when_lost():
    fake = FakeIptables()
    assert len(overlay_rules(Iptables(run=fake), '10.1.0.0/16', '10.1.15.0/24', True)) == 4
    assert fake.chains[('filter', 'FORWARD')] == [['-j', FORWARD_CHAIN]]
    assert fake.chains[('nat', 'POSTROUTING')] == [['-j', NAT_CHAIN]]
    assert len(fake.chains[('nat', NAT_CHAIN)]) == 4
    # a second pass, and a restarted daemon, change nothing (no flush: no moment without rules)
    iptables = Iptables(run=fake)
    del fake.calls[:]
    assert overlay_rules(iptables, '10.1.0.0/16', '10.1.15.0/24', True) == []
    assert overlay_rules(iptables, '10.1.0.0/16', '10.1.15.0/24', True) == []
    assert not [call for call in fake.calls if call[1] in ('-F', '-A', '-D')]
    # Docker's restart dropped the jump; someone flushed the chain
    fake.chains[('nat', 'POSTROUTING')] = []
    del fake.chains[('filter', FORWARD_CHAIN)][:]
    actions = overlay_rules(iptables, '10.1.0.0/16', '10.1.15.0/24', True)
    assert actions == ['refilled the chain %s of filter (2 rule(s))' % FORWARD_CHAIN,
                       'jumped from POSTROUTING to %s in nat' % NAT_CHAIN]
    # a new lease: the nat chain is refilled for it
    iptables.forget()
    overlay_rules(iptables, '10.1.0.0/16', '10.1.16.0/24', True)
    assert ['!', '-s', '10.1.0.0/16', '-d', '10.1.16.0/24', '-j', 'RETURN'] in fake.chains[('nat', NAT_CHAIN)]
    assert len(fake.chains[('nat', NAT_CHAIN)]) == 4
    # masquerading turned off: its chain and jump go, forwarding stays
    overlay_rules(iptables, '10.1.0.0/16', '10.1.16.0/24', False)
    assert ('nat', NAT_CHAIN) not in fake.chains and fake.chains[('nat', 'POSTROUTING')] == []
    assert len(fake.chains[('filter', FORWARD_CHAIN)]) == 2


def test_a_failing_iptables_is_one_line_naming_the_command():
    def broken(argv):
        return 4, 'iptables v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied\n'
    with pytest.raises(IptablesError, match=r'iptables -t filter -N ETCDFLEET-FLANNEL-FWD: .*Permission denied'):
        overlay_rules(Iptables(run=broken), '10.1.0.0/16', '10.1.15.0/24', True)
