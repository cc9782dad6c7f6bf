//! The strict chunked-body decoder the direct path's tests read with, checked on its own.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::*;

#[tokio::test]
async fn the_decoder_is_strict() {
    let mut ok =
        ChunkReader::new(&b"2\r\n:\n\r\n1b\r\nid: 1\ndata: xxxxxxxxxxxxx\n\n\r\n0\r\n\r\n"[..]);
    assert_eq!(ok.next().await, Ok(Chunk::Data(b":\n".to_vec())));
    assert_eq!(id_of(&ok.data().await), 1);
    assert_eq!(ok.next().await, Ok(Chunk::Last));
    assert_eq!(ok.expect_eof().await, Ok(()));

    for bad in [
        &b"2\r\n:\nX\r\n"[..],
        b"02\r\n:\n\r\n",
        b"2;ext\r\n:\n\r\n",
        b"A\r\n0123456789\r\n",
        b"\r\n",
        b"2\n:\n\r\n",
        b"fffffffffffffffff\r\n",
    ] {
        let mut reader = ChunkReader::new(bad);
        assert!(
            matches!(reader.next().await, Err(WireError::Malformed(_))),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let mut cut = ChunkReader::new(&b"5\r\nab"[..]);
    assert_eq!(cut.next().await, Err(WireError::Eof { clean: false }));
    let mut trailer = ChunkReader::new(&b"0\r\nx: y\r\n\r\n"[..]);
    assert!(matches!(trailer.next().await, Err(WireError::Malformed(_))));
    let mut extra = ChunkReader::new(&b"0\r\n\r\nHTTP"[..]);
    assert_eq!(extra.next().await, Ok(Chunk::Last));
    assert!(extra.expect_eof().await.is_err());
}
