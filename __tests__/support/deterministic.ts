/**
 * Jest setup: every test file starts from the same Math.random sequence, so whatever a test leaves
 * unseeded (a layer's default initializer, tf.randomNormal without a seed) draws the same numbers
 * on every run and a failure reproduces. Tests that claim something about training still seed their
 * initializers themselves: this only stops a rare unlucky draw from turning CI red at random.
 */
import {mulberry32} from './random';

Math.random = mulberry32(20261129);
