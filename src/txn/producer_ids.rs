//! The broker's producer id source: blocks of [`PRODUCER_ID_BLOCK_SIZE`] ids taken from the
//! metadata log (one ProducerIdsRecord per block, as Kafka's controller logs AllocateProducerIds,
//! KIP-730), handed out one by one by InitProducerId. The next block's start is in the
//! metadata log, so ids are never reused across restarts; ids left in a block when the broker
//! stops are skipped.

use std::sync::Mutex;

use crate::error::Result;
use crate::metadata::controller::MetadataController;

/// Producer ids per block (Kafka's ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE).
pub const PRODUCER_ID_BLOCK_SIZE: i64 = 1000;

/// The current block: `next..end` are still free.
#[derive(Debug, Default)]
struct Block {
    next: i64,
    end: i64,
}

/// Hands out producer ids from the current block, taking a new one when it runs out.
#[derive(Debug, Default)]
pub struct ProducerIdManager {
    block: Mutex<Block>,
    /// One block allocation at a time: two would read the same start from the image.
    allocating: tokio::sync::Mutex<()>,
}

impl ProducerIdManager {
    pub fn new() -> Self {
        Self::default()
    }

    fn take(&self) -> Option<i64> {
        let mut block = self.block.lock().unwrap_or_else(|e| e.into_inner());
        (block.next < block.end).then(|| {
            block.next += 1;
            block.next - 1
        })
    }

    /// A producer id never handed out before by this cluster.
    pub async fn generate(&self, metadata: &MetadataController, broker_id: i32) -> Result<i64> {
        if let Some(id) = self.take() {
            return Ok(id);
        }
        let _one_allocation = self.allocating.lock().await;
        if let Some(id) = self.take() {
            return Ok(id);
        }
        let start = metadata
            .allocate_producer_ids(broker_id, PRODUCER_ID_BLOCK_SIZE)
            .await?;
        let mut block = self.block.lock().unwrap_or_else(|e| e.into_inner());
        *block = Block {
            next: start + 1,
            end: start + PRODUCER_ID_BLOCK_SIZE,
        };
        Ok(start)
    }
}
