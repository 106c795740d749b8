//! Listening sockets, made with socket2 so every option is ours: SO_REUSEPORT, backlog, no delay.

use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, TcpListener};

/// Binds one non-blocking `SO_REUSEPORT` listener on `addr` with `backlog`.
pub fn bind_reuseport(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// One listener per worker for every address. An address with port 0 is resolved by the first
/// bind, and the other workers bind the same port, so all workers share each address.
pub fn bind_all(
    addrs: &[SocketAddr],
    workers: usize,
    backlog: i32,
) -> Result<Vec<Vec<TcpListener>>, String> {
    let mut per_worker: Vec<Vec<TcpListener>> = (0..workers).map(|_| Vec::new()).collect();
    for &addr in addrs {
        let first =
            bind_reuseport(addr, backlog).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let resolved = first
            .local_addr()
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        per_worker[0].push(first);
        for list in per_worker.iter_mut().skip(1) {
            list.push(
                bind_reuseport(resolved, backlog)
                    .map_err(|e| format!("cannot listen on {resolved}: {e}"))?,
            );
        }
    }
    Ok(per_worker)
}

/// Whether an accept error means "out of descriptors or memory": back off instead of spinning.
pub fn is_resource_exhaustion(err: &std::io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}
