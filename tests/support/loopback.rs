//! A TCP server on a free 127.0.0.1 port, for the fixtures that are not etcd (a fake
//! endpoint, a proxy): it accepts on a thread of its own and hands each connection to the
//! fixture; dropped, it stops accepting and closes every connection the fixture gave it to
//! hold.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct Loopback {
    pub port: u16,
    stop: Arc<AtomicBool>,
    held: Held,
    thread: Option<JoinHandle<()>>,
}

/// The connections a [`Loopback`] closes when dropped.
#[derive(Clone, Default)]
pub struct Held(Arc<Mutex<Vec<TcpStream>>>);

impl Held {
    pub fn hold(&self, stream: &TcpStream) {
        if let (Ok(mut held), Ok(clone)) = (self.0.lock(), stream.try_clone()) {
            held.push(clone);
        }
    }
}

impl Loopback {
    /// Serves each accepted connection with `serve`, on the accepting thread.
    pub fn start(serve: impl Fn(TcpStream, &Held) + Send + 'static) -> Loopback {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback server");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let held = Held::default();
        let thread = {
            let (stop, held) = (stop.clone(), held.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &held);
                    }
                }
            })
        };
        Loopback {
            port,
            stop,
            held,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Ok(mut held) = self.held.0.lock() {
            for stream in held.drain(..) {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}
