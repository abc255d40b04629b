"""course_lib: the support library of the workbook "Residual networks for image
compression and restoration".

One module per course concept, each importable on its own:

========================  =====================================================
module                    concept (and the notebook that introduces it)
========================  =====================================================
``config``                fast mode, seeds, paths (00)
``data``                  course photos, image folders, Kodak, training crops (00)
``metrics``               PSNR, MS-SSIM, bits per pixel (00)
``baselines``             JPEG, WebP, JPEG 2000, AVIF through Pillow (01)
``rd``                    rate-distortion curves, Bjøntegaard delta rate (01)
``plots``                 image grids, zoomed crops, error maps, RD plots (01)
``blocks``                ``ResidualBlock``: y = x + F(x), plain/residual stacks (02)
``gdn``                   GDN / IGDN nonlinearity (03)
``codec``                 ``Encoder`` E, ``Decoder`` D, ``LearnedCodec`` (03, 06)
``quantization``          rounding, uniform noise, straight-through (04)
``entropy``               ``FactorizedPrior``: the learned entropy model (05)
``bitstream``             range coding with constriction, the ``.rcz`` format (05)
``training``, ``train``   rate-distortion training, shipping weights (07)
``evaluate``              RD evaluation against the classical codecs (07)
``restoration``           residual artefact removal: x~ = x^ + R(x^) (08)
``widgets``               the compression-level slider demo: ``update()`` + widgets (09)
``complexity``            MACs counted from layer shapes, TensorFlow's FLOP count (10)
========================  =====================================================

Command lines: ``python -m course_lib compress|decompress``,
``python -m course_lib.train``, ``python -m course_lib.evaluate``,
``python -m course_lib.baselines``.

Images cross the library's boundary as ``uint8`` arrays of shape (H, W, 3) in
[0, 255] unless a docstring says otherwise.
"""

__version__ = "0.1.0"
