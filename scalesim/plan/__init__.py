"""Planning on top of a fitted model (no TensorFlow): search a space of placements and batches,
recommend the cheapest and fastest configuration (predict), or do the same for a described cluster
(simulate). spec: what is asked; search: the evaluation; recommend: the pick; text: the rendering."""
