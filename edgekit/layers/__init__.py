"""edgekit's own Keras layers that saved models hold (quantization-aware training's `fake_quant`), registered with
Keras before any .keras file loads (`edgekit.keras_io`)."""
