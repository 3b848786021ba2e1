//! The transactional producer's calls (KIP-98, KIP-447, KIP-890), on
//! [`Producer`]. The state machine and the coordinator protocol behind them are
//! in [`super::transaction`].

use std::future::Future;

use super::Producer;
use super::delivery::Deliveries;
use super::transaction::{ConsumerGroupMetadata, Transactions, TxnOffset};
use crate::error::{Error, ErrorKind, Result, TimeoutKind};

impl Producer {
    fn transactions(&self, operation: &'static str) -> Result<&Transactions> {
        self.shared().txn.as_deref().ok_or_else(|| {
            Error::new(ErrorKind::TransactionState {
                operation,
                reason: "the producer is not transactional (set transactional.id)".into(),
            })
        })
    }

    /// Prepares a transactional producer (`transactional.id` set): finds its
    /// transaction coordinator, gets its producer id and epoch, fences any older
    /// producer with the same `transactional.id` and has the transaction that
    /// producer left open aborted. Call it once, before the first
    /// [`begin_transaction`](Self::begin_transaction).
    ///
    /// Waits at most `max.block.ms`; after a timeout, calling it again resumes.
    /// Fails with [`ErrorKind::TransactionFatal`] when the coordinator refuses
    /// (e.g. not authorised for the `transactional.id`).
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), herald::Error> {
    /// use herald::{Producer, Record};
    ///
    /// let producer = Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .set("transactional.id", "orders-enricher-1")
    ///     .build()?;
    /// producer.init_transactions().await?;
    /// producer.begin_transaction()?;
    /// producer.send(Record::new("orders").key("o-1").value("paid")).await?;
    /// producer.send(Record::new("audit").value("o-1 paid")).await?;
    /// producer.commit_transaction().await?;
    /// # Ok(()) }
    /// ```
    pub async fn init_transactions(&self) -> Result<()> {
        self.transactions("init_transactions")?.init().await
    }

    /// Begins a transaction: records sent from now until
    /// [`commit_transaction`](Self::commit_transaction) or
    /// [`abort_transaction`](Self::abort_transaction) are written together or
    /// not at all, as `read_committed` consumers see them. Fails with
    /// [`ErrorKind::TransactionState`] before `init_transactions` or while a
    /// transaction is open.
    pub fn begin_transaction(&self) -> Result<()> {
        let t = self.transactions("begin_transaction")?;
        t.begin()?;
        self.shared().accumulator.deliveries().track_failures();
        Ok(())
    }

    /// Adds a consumer group's offsets to the transaction (KIP-447): they are
    /// committed if and only if the transaction commits — the step that makes a
    /// consume–transform–produce loop exactly-once. `offsets` are the *next*
    /// offsets to read; `group` identifies the consumer (its generation and member
    /// id let the group coordinator refuse a zombie's offsets).
    ///
    /// Waits at most `max.block.ms`. A failure makes the transaction abortable.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: impl IntoIterator<Item = TxnOffset>,
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        let t = self.transactions("send_offsets_to_transaction")?;
        t.send_offsets(offsets.into_iter().collect(), group).await
    }

    /// Commits the transaction: sends every record still queued, waits until
    /// each is written (and its callback has run), then asks the coordinator to
    /// commit. Records sent meanwhile are refused.
    ///
    /// If a record of the transaction failed (or was refused by `send`), nothing
    /// is committed and this fails with [`ErrorKind::TransactionAbortable`]: call
    /// [`abort_transaction`](Self::abort_transaction), then send the records again
    /// in a new transaction. A fenced producer fails with [`ErrorKind::Fenced`].
    /// Waits at most `max.block.ms`; after a timeout calling it again resumes, and
    /// the error says (with [`Error::may_have_been_written`]) whether the commit
    /// request was sent, i.e. whether the transaction may have committed.
    /// From inside a delivery callback it fails at once ([`ErrorKind::InCallback`]).
    pub async fn commit_transaction(&self) -> Result<()> {
        let t = self.transactions("commit_transaction")?;
        if Deliveries::in_callback() {
            return Err(Error::new(ErrorKind::InCallback { call: "commit_transaction" }));
        }
        t.begin_commit()?;
        self.flush_for(t).await?;
        t.finish_commit(self.shared().accumulator.deliveries().first_failure()).await
    }

    /// Aborts the transaction: records still queued fail unsent with
    /// [`ErrorKind::TransactionAborted`], records already sent are waited for,
    /// then the coordinator writes abort markers — `read_committed` consumers
    /// never see any record of it. Allowed in a transaction and after an
    /// abortable error; waits at most `max.block.ms` (calling it again resumes).
    pub async fn abort_transaction(&self) -> Result<()> {
        let t = self.transactions("abort_transaction")?;
        if Deliveries::in_callback() {
            return Err(Error::new(ErrorKind::InCallback { call: "abort_transaction" }));
        }
        t.begin_abort()?;
        // Queued batches fail at the sender's next pass; wake it.
        self.shared().wake.notify_one();
        self.flush_for(t).await?;
        t.finish_abort(self.shared().accumulator.deliveries().first_failure()).await
    }

    /// Runs `body` in a transaction: begins one, commits it when `body` returns
    /// `Ok` (and returns what `body` returned), aborts it when `body` returns an
    /// error or the commit fails with an abortable error. A fenced or otherwise
    /// failed producer's error is returned as is.
    ///
    /// ```no_run
    /// # async fn demo(producer: herald::Producer) -> Result<(), herald::Error> {
    /// use herald::Record;
    ///
    /// let written = producer
    ///     .in_transaction(|p| async move {
    ///         let a = p.send(Record::new("orders").key("o-1").value("paid")).await?;
    ///         let b = p.send(Record::new("audit").value("o-1 paid")).await?;
    ///         Ok::<_, herald::Error>((a, b))
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn in_transaction<F, Fut, T, E>(&self, body: F) -> std::result::Result<T, E>
    where
        F: FnOnce(Producer) -> Fut,
        Fut: Future<Output = std::result::Result<T, E>>,
        E: From<Error>,
    {
        self.begin_transaction()?;
        match body(self.clone()).await {
            Ok(v) => match self.commit_transaction().await {
                Ok(()) => Ok(v),
                Err(e) if e.is_transaction_abortable() => {
                    if let Err(abort) = self.abort_transaction().await {
                        tracing::warn!(error = %abort, "aborting the transaction after a failed commit failed");
                    }
                    Err(e.into())
                }
                Err(e) => Err(e.into()),
            },
            Err(e) => {
                self.abort_transaction().await?;
                Err(e)
            }
        }
    }

    /// Waits, up to `max.block.ms`, until every record queued so far is resolved.
    async fn flush_for(&self, t: &Transactions) -> Result<()> {
        let max_block = self.shared().config.max_block;
        match tokio::time::timeout(max_block, self.flush()).await {
            Ok(r) => r,
            Err(_) => {
                tracing::debug!(transactional_id = t.id(), "records of the transaction still pending");
                Err(Error::timeout(TimeoutKind::Transaction, max_block))
            }
        }
    }
}
