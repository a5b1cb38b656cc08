// The one registration file: op schemas for the cae_fast namespace. Backend kernels register
// themselves next to their code (cpu/*.cpp, cuda/*.cu) with TORCH_LIBRARY_IMPL.
#include <Python.h>
#include <torch/library.h>

extern "C" {
// Importing cae_fast._C loads this shared object, which runs the static registrations below.
PyObject* PyInit__C(void) {
  static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&module_def);
}
}

TORCH_LIBRARY(cae_fast, m) {
  // Per-image Pearson correlation and mean squared error of x against y, one read of each.
  m.def("pcc_mse(Tensor x, Tensor y) -> (Tensor pcc, Tensor mse)");
  // Per-frame detail statistics of x against y: [B, 4] float64 columns ssim, lap_x, lap_y,
  // lap_mean_x (csrc/common/frame_stats.h). x, y: [B, C, H, W], H, W >= 7.
  m.def("frame_stats(Tensor x, Tensor y) -> Tensor");
  // Mean squared residual of every patch x patch tile over all channels: [B, H/patch, W/patch]
  // (a remainder strip is left out).
  m.def("patch_mse(Tensor x, Tensor y, int patch) -> Tensor");
  // Detail of every patch x patch tile: mean squared 4-neighbour Laplacian of the channel-mean
  // image over the tile's interior pixels, of x ([:, 0]) and of y ([:, 1]): [B, 2, H/patch, W/patch]
  // (a remainder strip is left out; a tile without interior pixels is 0).
  m.def("patch_detail(Tensor x, Tensor y, int patch) -> Tensor");
  // Squared L2 distance of every z to its nearest row of h_ref and that row's index
  // (ties -> lowest index). exclude[i] >= 0 names a row z[i] may not match (itself).
  m.def("nn_ref(Tensor z, Tensor h_ref, Tensor? exclude=None) -> (Tensor dist2, Tensor idx)");
  // d dist2 / d z for nn_ref; h_ref gets no gradient by design (H_ref is encoded without grad).
  m.def("nn_ref_backward(Tensor grad_dist2, Tensor z, Tensor h_ref, Tensor idx) -> Tensor");
}
