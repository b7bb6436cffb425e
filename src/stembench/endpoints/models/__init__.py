"""Model adapters: PyTorch, Keras/TensorFlow, ONNX, classical and plain Python."""
