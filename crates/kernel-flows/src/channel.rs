//! Channels: synchronous transformers composed statically inside one task.
//!
//! This is fault.kernel.flows' `Channel` (`f_transfer`, `f_emit`, `f_terminate`) without the
//! runtime rebinding: a [`Channel`] takes one item and pushes zero or more into an [`Emit`]
//! batch, and [`Channel::then`] joins two channels into a [`Chain`] whose type is known at
//! compile time, so a whole chain is one inlined call per item.

use std::collections::VecDeque;
use std::marker::PhantomData;

/// The output port of a channel: a batch that collects what one call emits.
///
/// A channel never sees its downstream; it pushes into an `Emit`, and whoever drives it (a
/// [`Chain`], a [`Series`](crate::Series), a test) moves the batch on. The buffer is reused
/// between calls, so a steady flow allocates nothing here.
#[derive(Debug)]
pub struct Emit<T> {
    items: VecDeque<T>,
}

impl<T> Emit<T> {
    /// An empty batch.
    pub fn new() -> Self {
        Emit {
            items: VecDeque::new(),
        }
    }

    /// Emits one item downstream.
    #[inline]
    pub fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// The number of items emitted and not yet taken.
    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether nothing is waiting to be taken.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Takes the oldest emitted item.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        self.items.pop_front()
    }

    /// The oldest emitted item, left in place.
    #[inline]
    pub fn peek(&self) -> Option<&T> {
        self.items.front()
    }

    /// Takes every emitted item, oldest first.
    pub fn drain(&mut self) -> impl Iterator<Item = T> + '_ {
        self.items.drain(..)
    }

    /// Discards every emitted item (what an interrupt does to a batch).
    pub fn clear(&mut self) {
        self.items.clear();
    }
}

impl<T> Default for Emit<T> {
    fn default() -> Self {
        Emit::new()
    }
}

impl<T> Extend<T> for Emit<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        self.items.extend(iter);
    }
}

/// A synchronous transformer: one segment of a flow, driven inside one task.
///
/// `transfer` is fault's `f_transfer`: one item in, zero or more out. `terminate` is its
/// `f_terminate`: upstream has ended, so flush whatever is held (a trailer, a partial batch)
/// and finish. `buffered` is `f_empty` made quantitative: how many items the channel holds,
/// which a [`Series`](crate::Series) counts against its high-water mark.
///
/// An error from either method faults the flow that drives the channel.
///
/// ```
/// use kernel_flows::{Channel, Emit, map};
///
/// /// Splits a line into words, emitting each one.
/// struct Words;
/// impl Channel for Words {
///     type In = String;
///     type Out = String;
///     type Error = std::convert::Infallible;
///     fn transfer(&mut self, line: String, out: &mut Emit<String>) -> Result<(), Self::Error> {
///         out.extend(line.split_whitespace().map(str::to_owned));
///         Ok(())
///     }
/// }
///
/// let mut chain = Words.then(map(|w: String| w.len()));
/// let mut out = Emit::new();
/// chain.transfer("flows of words".to_owned(), &mut out).unwrap();
/// assert_eq!(out.drain().collect::<Vec<_>>(), vec![5, 2, 5]);
/// ```
pub trait Channel {
    /// What the channel takes.
    type In;
    /// What the channel emits.
    type Out;
    /// Why the channel can fail; a failure faults the flow.
    type Error;

    /// Transforms one item, pushing zero or more outputs into `out`.
    fn transfer(&mut self, item: Self::In, out: &mut Emit<Self::Out>) -> Result<(), Self::Error>;

    /// Upstream has ended: push whatever the channel still holds into `out`.
    ///
    /// Called once, after the last `transfer`. The default holds nothing and emits nothing.
    fn terminate(&mut self, out: &mut Emit<Self::Out>) -> Result<(), Self::Error> {
        let _ = out;
        Ok(())
    }

    /// How many items the channel holds internally, waiting for more input or for `terminate`.
    fn buffered(&self) -> usize {
        0
    }

    /// Joins `next` after this channel: everything this one emits is transferred into `next`.
    fn then<C>(self, next: C) -> Chain<Self, C>
    where
        Self: Sized,
        C: Channel<In = Self::Out, Error = Self::Error>,
    {
        Chain {
            first: self,
            second: next,
            between: Emit::new(),
        }
    }
}

/// Two channels joined by [`Channel::then`]; itself a channel.
#[derive(Debug)]
pub struct Chain<A: Channel, B> {
    first: A,
    second: B,
    between: Emit<A::Out>,
}

impl<A, B> Chain<A, B>
where
    A: Channel,
    B: Channel<In = A::Out, Error = A::Error>,
{
    fn forward(&mut self, out: &mut Emit<B::Out>) -> Result<(), A::Error> {
        while let Some(item) = self.between.pop() {
            self.second.transfer(item, out)?;
        }
        Ok(())
    }
}

impl<A, B> Channel for Chain<A, B>
where
    A: Channel,
    B: Channel<In = A::Out, Error = A::Error>,
{
    type In = A::In;
    type Out = B::Out;
    type Error = A::Error;

    #[inline]
    fn transfer(&mut self, item: A::In, out: &mut Emit<B::Out>) -> Result<(), A::Error> {
        self.first.transfer(item, &mut self.between)?;
        self.forward(out)
    }

    fn terminate(&mut self, out: &mut Emit<B::Out>) -> Result<(), A::Error> {
        // Termination follows the data: the first channel flushes into the second, and only
        // then is the second told that nothing more will come.
        self.first.terminate(&mut self.between)?;
        self.forward(out)?;
        self.second.terminate(out)
    }

    fn buffered(&self) -> usize {
        self.first.buffered() + self.between.len() + self.second.buffered()
    }
}

/// fault's `Transformation`: applies a function to each item. Made by [`map`].
pub struct Transformation<F, I, O, E> {
    f: F,
    types: PhantomData<fn(I) -> Result<O, E>>,
}

impl<F, I, O, E> std::fmt::Debug for Transformation<F, I, O, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Transformation")
    }
}

/// A channel that emits `f(item)` for each item and never fails.
///
/// Its error type is inferred from the chain it joins, so it fits anywhere. In a chain whose
/// stages all never fail, name it on the first: `map::<_, _, _, Infallible>(f)`.
pub fn map<F, I, O, E>(f: F) -> Transformation<F, I, O, E>
where
    F: FnMut(I) -> O,
{
    Transformation {
        f,
        types: PhantomData,
    }
}

impl<F, I, O, E> Channel for Transformation<F, I, O, E>
where
    F: FnMut(I) -> O,
{
    type In = I;
    type Out = O;
    type Error = E;

    #[inline]
    fn transfer(&mut self, item: I, out: &mut Emit<O>) -> Result<(), E> {
        out.push((self.f)(item));
        Ok(())
    }
}

/// A channel that passes `Ok` items on and faults the flow on the first `Err`. Made by
/// [`results`].
///
/// It is how a fallible source (a `FramedRead`, anything yielding `Result`) feeds a chain:
/// put it first, and the source's error becomes the flow's fault.
pub struct Results<T, E> {
    types: PhantomData<fn(Result<T, E>)>,
}

impl<T, E> std::fmt::Debug for Results<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Results")
    }
}

/// A channel from `Result<T, E>` to `T` whose error is the first `Err` it sees.
pub fn results<T, E>() -> Results<T, E> {
    Results { types: PhantomData }
}

impl<T, E> Channel for Results<T, E> {
    type In = Result<T, E>;
    type Out = T;
    type Error = E;

    #[inline]
    fn transfer(&mut self, item: Result<T, E>, out: &mut Emit<T>) -> Result<(), E> {
        out.push(item?);
        Ok(())
    }
}

/// Groups items into batches of a fixed size; the short remainder goes out on terminate.
/// Made by [`batch`].
pub struct Batch<T, E> {
    size: usize,
    held: Vec<T>,
    error: PhantomData<fn() -> E>,
}

impl<T, E> std::fmt::Debug for Batch<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Batch(size={}, held={})", self.size, self.held.len())
    }
}

/// A channel that emits a `Vec` of every `size` items (at least 1), holding the rest until
/// more come or the flow terminates. Like [`map`], its error type comes from its chain.
pub fn batch<T, E>(size: usize) -> Batch<T, E> {
    let size = size.max(1);
    Batch {
        size,
        held: Vec::with_capacity(size),
        error: PhantomData,
    }
}

impl<T, E> Channel for Batch<T, E> {
    type In = T;
    type Out = Vec<T>;
    type Error = E;

    fn transfer(&mut self, item: T, out: &mut Emit<Vec<T>>) -> Result<(), E> {
        self.held.push(item);
        if self.held.len() == self.size {
            out.push(std::mem::replace(
                &mut self.held,
                Vec::with_capacity(self.size),
            ));
        }
        Ok(())
    }

    fn terminate(&mut self, out: &mut Emit<Vec<T>>) -> Result<(), E> {
        if !self.held.is_empty() {
            out.push(std::mem::take(&mut self.held));
        }
        Ok(())
    }

    fn buffered(&self) -> usize {
        self.held.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    #[test]
    fn chain_terminate_flushes_in_order_through_every_stage() {
        let mut chain = map::<_, _, _, Infallible>(|x: u32| x * 10)
            .then(batch(2))
            .then(map(|g: Vec<u32>| g.len()));
        let mut out = Emit::new();
        for x in 0..5 {
            chain.transfer(x, &mut out).unwrap();
        }
        assert_eq!(chain.buffered(), 1, "one item waits in the group");
        assert_eq!(out.drain().collect::<Vec<_>>(), vec![2, 2]);
        chain.terminate(&mut out).unwrap();
        assert_eq!(out.drain().collect::<Vec<_>>(), vec![1]);
        assert_eq!(chain.buffered(), 0);
    }

    #[test]
    fn results_faults_on_the_first_error_and_passes_ok_items() {
        let mut chain = results::<u8, &str>().then(map(|x: u8| x + 1));
        let mut out = Emit::new();
        chain.transfer(Ok(1), &mut out).unwrap();
        assert_eq!(chain.transfer(Err("bad frame"), &mut out), Err("bad frame"));
        assert_eq!(out.drain().collect::<Vec<_>>(), vec![2]);
    }
}
