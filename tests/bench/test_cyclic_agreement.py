"""The arms and the pseudo-label of bench.cyclic_agreement on tiny hand-made logs."""

import numpy as np

from bench.cyclic_agreement import (
    CONC,
    FAR,
    THREE,
    arm_answers,
    cyclic_answers,
    disagreements,
    held_out_disagreements,
    least_certain,
    pick,
    three_orders,
)
from calibrators.permutation import cyclic_shift


def _logs(content: np.ndarray, own_bias: np.ndarray) -> np.ndarray:
    """(questions, n orders, n options): content plus each question's own bias at the position
    where the option is shown in cyclic order k."""
    q, n = content.shape
    out = np.empty((q, n, n))
    for k in range(n):
        perm = cyclic_shift(n, k)
        pos = np.empty(n, dtype=int)
        pos[list(perm)] = np.arange(n)  # position of original option i
        out[:, k] = content + own_bias[:, pos]
    return out


def test_orders_that_agree_never_disagree_with_cyclic() -> None:
    content = np.random.default_rng(0).normal(size=(12, 4))
    logs = _logs(content, np.zeros((12, 4)))
    for arm, d in disagreements(logs).items():
        assert d.sum() == 0, arm


def test_concentrated_is_cyclic_on_the_least_certain() -> None:
    rng = np.random.default_rng(1)
    logs = _logs(rng.normal(size=(9, 4)), rng.normal(0, 2.0, size=(9, 4)))
    u = least_certain(logs, 1 / 3)
    assert u.sum() == 3
    answers = arm_answers(logs)
    assert np.array_equal(answers[CONC][u], cyclic_answers(logs)[u])
    assert np.array_equal(answers[CONC][~u], logs[~u, 0].argmax(axis=1))


def test_three_orders_take_out_the_own_bias_the_mean_keeps() -> None:
    # option 0 is right by 1; orders 0, 2, 1 show every option but option 0 at position 1
    # once, and the question's own bias favours that position by 6: their mean loses option 0.
    content = np.array([[1.0, 0.0, 0.0, 0.0]])
    bias = np.array([[0.0, 6.0, 0.0, 0.0]])
    logs = _logs(content, bias)
    three = logs[0, [0, 2, 1]]
    assert three.mean(axis=0).argmax() != 0
    assert three_orders(logs)[0] == 0


def test_held_out_label_leaves_out_the_far_pair() -> None:
    # orders 0 and 2 favour option 1, orders 1 and 3 option 3 less: the whole cycle sides with
    # the far pair, the orders it leaves out do not.
    logs = np.zeros((2, 4, 4))
    logs[:, [0, 2], 1] = 2.0
    logs[:, [1, 3], 3] = 1.5
    assert disagreements(logs)[FAR].tolist() == [0.0, 0.0]
    held = held_out_disagreements(logs)
    assert held[FAR].tolist() == [1.0, 1.0]
    assert set(held) == {FAR, CONC, THREE}


def test_pick_is_the_least_disagreement() -> None:
    assert pick({FAR: 0.1, CONC: 0.2}) == FAR
    assert pick({FAR: 0.3, CONC: 0.2}) == CONC
    assert pick({FAR: 0.2, CONC: 0.2}) == FAR
    assert pick({FAR: 0.3, CONC: 0.2, THREE: 0.1}, (FAR, CONC, THREE)) == THREE


def test_an_order_that_disagrees_with_the_rest_reads_lower() -> None:
    from bench.cyclic_agreement import order_signals

    content = np.random.default_rng(1).normal(size=(40, 4)) * 3
    logs = _logs(content, np.zeros((40, 4)))
    logs[:, 2] = logs[:, 2, ::-1]  # order 2 answers for the wrong options
    agree, top = order_signals(logs)
    assert agree[2] < agree[[0, 1, 3]].min()
    np.testing.assert_allclose(top, top[0])  # as sure of itself, whatever it says
