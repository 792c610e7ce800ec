"""The benchmark against MediaPipe FaceLandmarker and dlib on synthetic data and public photos,
`python -m bench.benchmark`, which writes docs/benchmarks.md and its pictures: `inputs` prepares the test images,
clips, photos and their ground truth, `runs` runs our model and the peers (and the speed test), `scoring` turns
their points into the figures, `report` draws the pictures and writes the document, `__main__` is the command."""
