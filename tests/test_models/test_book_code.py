"""The book's own Theano code (chapters 2 and 5) runs on symflow with only its imports changed, and the
cleaned-up units in models/ compute exactly what the book's classes compute."""

from __future__ import annotations

import numpy as np
import pytest

import symflow as theano
import symflow.tensor as T
from models import GRU, LSTM, RatedRNN, SimpleRNN


def init_weight(Mi, Mo):
    return np.random.randn(Mi, Mo) / np.sqrt(Mi + Mo)


# -- chapter 2, ported to Python 3 (print and xrange) -------------------------------------------------
class BookSimpleRNN:
    def __init__(self, M):
        self.M = M  # hidden layer size

    def fit(self, X, Y, learning_rate=10e-5, mu=0.99, reg=1.0, activation=T.tanh, epochs=200, show_fig=False):
        D = X[0].shape[1]  # X is of size N x T(n) x D
        K = len(set(Y.flatten()))
        N = len(Y)
        M = self.M
        self.f = activation

        # initial weights
        Wx = init_weight(D, M)
        Wh = init_weight(M, M)
        bh = np.zeros(M)
        h0 = np.zeros(M)
        Wo = init_weight(M, K)
        bo = np.zeros(K)

        # make them theano shared
        self.Wx = theano.shared(Wx)
        self.Wh = theano.shared(Wh)
        self.bh = theano.shared(bh)
        self.h0 = theano.shared(h0)
        self.Wo = theano.shared(Wo)
        self.bo = theano.shared(bo)
        self.params = [self.Wx, self.Wh, self.bh, self.h0, self.Wo, self.bo]

        thX = T.fmatrix('X')
        thY = T.ivector('Y')

        def recurrence(x_t, h_t1):
            # returns h(t), y(t)
            h_t = self.f(x_t.dot(self.Wx) + h_t1.dot(self.Wh) + self.bh)
            y_t = T.nnet.softmax(h_t.dot(self.Wo) + self.bo)
            return h_t, y_t

        [h, y], _ = theano.scan(
            fn=recurrence,
            outputs_info=[self.h0, None],
            sequences=thX,
            n_steps=thX.shape[0],
        )

        py_x = y[:, 0, :]
        prediction = T.argmax(py_x, axis=1)

        cost = -T.mean(T.log(py_x[T.arange(thY.shape[0]), thY]))
        grads = T.grad(cost, self.params)
        dparams = [theano.shared(p.get_value()*0) for p in self.params]

        updates = [
            (p, p + mu*dp - learning_rate*g) for p, dp, g in zip(self.params, dparams, grads, strict=True)
        ] + [
            (dp, mu*dp - learning_rate*g) for dp, g in zip(dparams, grads, strict=True)
        ]

        self.predict_op = theano.function(inputs=[thX], outputs=prediction)
        self.train_op = theano.function(
            inputs=[thX, thY],
            outputs=[cost, prediction, y],
            updates=updates
        )

        costs = []
        for i in range(epochs):
            order = np.random.permutation(N)
            X, Y = X[order], Y[order]
            n_correct = 0
            cost = 0
            for j in range(N):
                c, p, rout = self.train_op(X[j], Y[j])
                cost += c
                if p[-1] == Y[j, -1]:
                    n_correct += 1
            print("i:", i, "cost:", cost, "classification rate:", (float(n_correct)/N))
            costs.append(cost)
        return costs


def test_chapter_2_simple_rnn_trains_on_parity() -> None:
    np.random.seed(0)
    n_bits = 6
    X = ((np.arange(2**n_bits)[:, None] >> np.arange(n_bits)) & 1).astype(np.float32).reshape(-1, n_bits, 1)
    Y_t = (np.cumsum(X[:, :, 0], axis=1) % 2).astype(np.int32)
    rnn = BookSimpleRNN(8)
    costs = rnn.fit(X, Y_t, learning_rate=1e-3, activation=T.nnet.sigmoid, epochs=8)
    assert np.all(np.isfinite(costs)) and costs[-1] < costs[0]

    # the trained predict_op agrees with the recurrence written out in NumPy
    Wx, Wh, bh, h0, Wo, bo = (p.get_value() for p in rnn.params)
    for x in X[:8]:
        h, expected = h0, []
        for x_t in x:
            h = 1 / (1 + np.exp(-(x_t @ Wx + h @ Wh + bh)))
            expected.append(np.argmax(h @ Wo + bo))
        np.testing.assert_array_equal(rnn.predict_op(x), expected)


# -- chapter 5's GRU and LSTM classes -----------------------------------------------------------------
class BookGRU:
    def __init__(self, Mi, Mo, activation):
        self.f = activation
        self.Mi = Mi
        self.Mo = Mo
        Wxr = init_weight(Mi, Mo)
        Whr = init_weight(Mo, Mo)
        br = np.zeros(Mo)
        Wxz = init_weight(Mi, Mo)
        Whz = init_weight(Mo, Mo)
        bz = np.zeros(Mo)
        Wxh = init_weight(Mi, Mo)
        Whh = init_weight(Mo, Mo)
        bh = np.zeros(Mo)
        h0 = np.zeros(Mo)
        self.Wxr = theano.shared(Wxr)
        self.Whr = theano.shared(Whr)
        self.br = theano.shared(br)
        self.Wxz = theano.shared(Wxz)
        self.Whz = theano.shared(Whz)
        self.bz = theano.shared(bz)
        self.Wxh = theano.shared(Wxh)
        self.Whh = theano.shared(Whh)
        self.bh = theano.shared(bh)
        self.h0 = theano.shared(h0)
        self.params = [self.Wxr, self.Whr, self.br, self.Wxz, self.Whz, self.bz, self.Wxh, self.Whh, self.bh, self.h0]

    def recurrence(self, x_t, h_t1):
        r = T.nnet.sigmoid(x_t.dot(self.Wxr) + h_t1.dot(self.Whr) + self.br)
        z = T.nnet.sigmoid(x_t.dot(self.Wxz) + h_t1.dot(self.Whz) + self.bz)
        hhat = self.f(x_t.dot(self.Wxh) + (r * h_t1).dot(self.Whh) + self.bh)
        h = (1 - z) * h_t1 + z * hhat
        return h

    def output(self, x):
        # input X should be a matrix (2-D)
        # rows index time
        h, _ = theano.scan(
            fn=self.recurrence,
            sequences=x,
            outputs_info=[self.h0],
            n_steps=x.shape[0],
        )
        return h


class BookLSTM:
    def __init__(self, Mi, Mo, activation):
        self.Mi = Mi
        self.Mo = Mo
        self.f = activation
        names = ["Wxi", "Whi", "Wci", "bi", "Wxf", "Whf", "Wcf", "bf", "Wxc", "Whc", "bc",
                 "Wxo", "Who", "Wco", "bo", "c0", "h0"]
        for name in names:  # the book spells out 17 init_weight/zeros lines; same shapes
            rows = Mi if name.startswith("Wx") else Mo
            value = init_weight(rows, Mo) if name.startswith("W") else np.zeros(Mo)
            setattr(self, name, theano.shared(value))
        self.params = [getattr(self, n) for n in names]

    def recurrence(self, x_t, h_t1, c_t1):
        i_t = T.nnet.sigmoid(x_t.dot(self.Wxi) + h_t1.dot(self.Whi) + c_t1.dot(self.Wci) + self.bi)
        f_t = T.nnet.sigmoid(x_t.dot(self.Wxf) + h_t1.dot(self.Whf) + c_t1.dot(self.Wcf) + self.bf)
        c_t = f_t * c_t1 + i_t * T.tanh(x_t.dot(self.Wxc) + h_t1.dot(self.Whc) + self.bc)
        o_t = T.nnet.sigmoid(x_t.dot(self.Wxo) + h_t1.dot(self.Who) + c_t.dot(self.Wco) + self.bo)
        h_t = o_t * T.tanh(c_t)
        return h_t, c_t

    def output(self, x):
        # input X should be a matrix (2-D)
        # rows index time
        [h, c], _ = theano.scan(
            fn=self.recurrence,
            sequences=x,
            outputs_info=[self.h0, self.c0],
            n_steps=x.shape[0],
        )
        return h


class BookRated:
    """Chapter 5's rated recurrence, as a unit class like the GRU's."""

    def __init__(self, Mi, Mo, activation):
        self.f = activation
        for name, shape in [("Wx", (Mi, Mo)), ("Wh", (Mo, Mo)), ("Wxz", (Mi, Mo)), ("Whz", (Mo, Mo))]:
            setattr(self, name, theano.shared(init_weight(*shape)))
        for name in ("bh", "bz", "h0"):
            setattr(self, name, theano.shared(np.zeros(Mo)))

    def recurrence(self, x_t, h_t1):
        hhat_t = self.f(x_t.dot(self.Wx) + h_t1.dot(self.Wh) + self.bh)
        z_t = T.nnet.sigmoid(x_t.dot(self.Wxz) + h_t1.dot(self.Whz) + self.bz)
        h_t = (1 - z_t) * h_t1 + z_t * hhat_t
        return h_t

    def output(self, x):
        h, _ = theano.scan(fn=self.recurrence, sequences=x, outputs_info=[self.h0], n_steps=x.shape[0])
        return h


class BookSimple(BookRated):
    def recurrence(self, x_t, h_t1):
        return self.f(x_t.dot(self.Wx) + h_t1.dot(self.Wh) + self.bh)


@pytest.mark.parametrize(("book_cls", "ours_cls", "activation"), [
    (BookSimple, SimpleRNN, "relu"), (BookRated, RatedRNN, "tanh"), (BookGRU, GRU, "relu"), (BookLSTM, LSTM, "tanh"),
])
def test_units_compute_what_the_books_classes_compute(book_cls, ours_cls, activation) -> None:
    np.random.seed(1)
    fn = {"relu": T.nnet.relu, "tanh": T.tanh}[activation]
    book = book_cls(3, 4, fn)
    ours = ours_cls(3, 4, activation=activation)
    for name, p in ours.named_params().items():
        value = np.random.randn(*p.get_value().shape) * 0.5  # nonzero biases and initial states too
        p.set_value(value)
        getattr(book, name).set_value(value)
    x = T.matrix("x")
    h_book, h_ours = book.output(x), ours.output(x)
    params_book = [getattr(book, n) for n in ours.param_names]
    grads_book = T.grad(h_book.sum(), params_book)
    grads_ours = T.grad(h_ours.sum(), ours.params)
    f = theano.function([x], [h_book, h_ours, *grads_book, *grads_ours])
    out = f(np.random.randn(6, 3))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-10)
    n = len(params_book)
    for g_book, g_ours, name in zip(out[2:2 + n], out[2 + n:], ours.param_names, strict=True):
        np.testing.assert_allclose(g_ours, g_book, rtol=1e-9, atol=1e-12, err_msg=name)
