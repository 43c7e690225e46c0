/// The arithmetic kernels live in their own target, NetKernels, compiled `-Ounchecked` in release while
/// the rest of Net keeps its preconditions and overflow checks (Package.swift). Net's API speaks in their
/// types (`ConvGeometry`, `Activation`, `PlaneBox`, `Workspace`, `Workers`), so Net re-exports them:
/// `import Net` is all a client needs.
@_exported import NetKernels
